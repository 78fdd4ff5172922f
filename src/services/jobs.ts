import { randomUUID } from 'node:crypto';
import type { BackupCatalog, BackupEntry } from '../backups/catalog.js';
import type { RestoreCatalog, RestoreEntry } from '../backups/restores.js';
import type { CancelRequests } from '../coordination/cancel-requests.js';
import { AppError, BadRequestError, BulkInvalidError, NotFoundError, type ItemError } from '../errors.js';
import type { JobEventsHub } from './job-events.js';
import { cursorPage, foundJob, jobError, jobPage } from './outcomes.js';
import type { JobPage, JobView, ListFilter } from '../store/job-store.js';
import { declaresKind, type Inventory, type Server, type ServerPage } from '../inventory.js';
import type { JobStore } from '../store/job-store.js';
import type { RecordStore, StoredRecord } from '../store/records.js';
import {
  backupFamily,
  familyOf,
  isFinished,
  queueOfType,
  restoreFamily,
  type BackupData,
  type JobData,
  type JobEnvelope,
  type JobOptions,
  type JobState,
  type JobType,
  type QueueName,
  type RestoreData,
} from '../jobs/index.js';
import { visibleTenant, type Principal } from '../tenant.js';
import type { QueuedQuota } from './quotas.js';

/** One job to enqueue, as a validated request body describes it. */
export type Submission = { type: JobType; data: JobData; options?: JobOptions };

/** How long POST /api/jobs/:id/cancel waits for a running job to stop before it answers 202. */
export const CANCEL_WAIT_MS = 5000;

export type CancelOutcome =
  /** It was waiting or delayed: it is gone from the queue. */
  | { outcome: 'removed'; job: null }
  /** It was running and has stopped: failed with the reason `cancelled`. */
  | { outcome: 'cancelled'; job: JobView }
  /** It was running and is still winding down. */
  | { outcome: 'cancelling'; job: JobView };

export type Submitted = { jobId: string; queue: QueueName; type: JobType; state: JobState; recordId: string };

/**
 * Turns a validated request into a job: checks the server is one the caller
 * may act on and declares this kind of work, then enqueues it for the
 * server's tenant.
 */
export class JobService {
  /** The job store itself: for the event stream (src/http/job-stream.ts) and tests; routes call the methods below. */
  readonly store: JobStore;
  private readonly inventory: Inventory;
  private readonly backups: BackupCatalog;
  private readonly restores: RestoreCatalog | undefined;
  /** The scan, update and backup records jobs leave about their servers. */
  private readonly records: RecordStore;
  private readonly cancels: CancelRequests;
  /** Whether BACKUP_ENCRYPTION_KEY is configured: without it, encrypted backups are refused at enqueue. */
  private readonly encryption: boolean;
  /** TENANT_MAX_QUEUED; absent where no quota applies (the benchmark's bare wiring). */
  private readonly quota: QueuedQuota | undefined;

  constructor(parts: {
    store: JobStore;
    inventory: Inventory;
    backups: BackupCatalog;
    restores?: RestoreCatalog;
    records: RecordStore;
    cancels: CancelRequests;
    encryption: boolean;
    quota?: QueuedQuota;
  }) {
    this.store = parts.store;
    this.inventory = parts.inventory;
    this.backups = parts.backups;
    this.restores = parts.restores;
    this.records = parts.records;
    this.cancels = parts.cancels;
    this.encryption = parts.encryption;
    this.quota = parts.quota;
  }

  /** The job `tenant` may see (undefined: admin), or its 404. */
  private async find(id: string, tenant: string | undefined): Promise<JobView> {
    return foundJob(id, await this.store.get(id, tenant));
  }

  /** The job as it is now, or a 404 when it does not exist or `principal` may not see it. */
  async get(principal: Principal, id: string): Promise<JobView> {
    return this.find(id, visibleTenant(principal));
  }

  /** A page of the job's log lines (all attempts, oldest first) and how many there are. */
  async logs(principal: Principal, id: string, start: number, limit: number): Promise<{ lines: string[]; count: number }> {
    return foundJob(id, await this.store.logs(id, visibleTenant(principal), start, limit));
  }

  /** A page of the jobs `principal` may see, newest first. */
  async list(principal: Principal, filter: Omit<ListFilter, 'tenant'>): Promise<JobPage> {
    return jobPage(await this.store.list({ tenant: visibleTenant(principal), ...filter }));
  }

  /** Remove a job that is not running. */
  async remove(principal: Principal, id: string): Promise<void> {
    const outcome = await this.store.remove(id, visibleTenant(principal));
    if (outcome.status !== 'removed') throw jobError(id, outcome);
    // Room for its tenant at once (a refusal is otherwise remembered for a second).
    this.quota?.forget();
  }

  /** Run a failed job again with a fresh set of attempts; answers the state it is in now. */
  async retry(principal: Principal, id: string): Promise<JobState> {
    const outcome = await this.store.retry(id, visibleTenant(principal));
    if (outcome.status !== 'retried') throw jobError(id, outcome);
    return outcome.state;
  }

  /**
   * The job as it is now, or — with `waitMs` — as soon as it has completed or
   * failed, or when the wait ends (whichever comes first). Waiting costs no
   * Redis connection: it listens to this process's job events. `gone` ends
   * the wait early (the client went away).
   */
  async waitFor(principal: Principal, id: string, waitMs: number, events: JobEventsHub, gone?: AbortSignal): Promise<JobView> {
    const tenant = visibleTenant(principal);
    const first = await this.find(id, tenant);
    if (waitMs <= 0 || isFinished(first.state)) return first;
    let wake: () => void = () => {};
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const stop = await events.watch(id, (e) => {
      if (e.type === 'completed' || e.type === 'failed' || e.type === 'removed') wake();
    });
    const timer = setTimeout(wake, waitMs);
    gone?.addEventListener('abort', wake, { once: true });
    try {
      // It may have ended between the first read and the subscription.
      const again = await this.find(id, tenant);
      if (isFinished(again.state)) return again;
      await woken;
      return await this.find(id, tenant);
    } finally {
      clearTimeout(timer);
      stop();
      gone?.removeEventListener('abort', wake);
    }
  }

  /**
   * Stop a job: a waiting or delayed one is removed from its queue; an active
   * one is asked to stop (its process aborts the work and fails it with the
   * reason `cancelled`, no further attempts), and this waits up to
   * CANCEL_WAIT_MS for that to happen. A finished job is a 409.
   */
  async cancel(principal: Principal, id: string): Promise<CancelOutcome> {
    const tenant = visibleTenant(principal);
    const view = await this.find(id, tenant);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'cancelled') throw jobError(id, { status: 'finished', state: view.state });
    if (view.state !== 'active') {
      const removed = await this.store.remove(id, tenant, { cancelled: true });
      if (removed.status === 'removed') {
        this.quota?.forget();
        return { outcome: 'removed', job: null };
      }
      if (removed.status === 'missing') throw jobError(id, removed);
      // It started meanwhile: stop it like any running job.
    }
    return this.stopRunning(id, tenant);
  }

  /** Ask a running job to stop, and wait up to CANCEL_WAIT_MS for it to have stopped. */
  private async stopRunning(id: string, tenant: string | undefined): Promise<CancelOutcome> {
    await this.cancels.request(id);
    const deadline = Date.now() + CANCEL_WAIT_MS;
    for (;;) {
      const now = await this.store.get(id, tenant);
      if (!now) return { outcome: 'removed', job: null };
      // Stopped: cancelled (or failed, had it failed by itself meanwhile).
      if (now.state === 'cancelled' || now.state === 'failed') return { outcome: 'cancelled', job: now };
      if (now.state === 'completed') throw jobError(id, { status: 'completed-first' });
      if (Date.now() >= deadline) return { outcome: 'cancelling', job: now };
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A completed backup of a server `principal` may see, or a 404. */
  async backup(principal: Principal, serverId: string, backupId: string): Promise<BackupEntry> {
    const server = this.server(principal, serverId);
    const entry = await this.backups.get(server.id, backupId);
    if (!entry) throw new NotFoundError(`Backup "${backupId}" of server "${server.id}"`, 'BACKUP_NOT_FOUND');
    return entry;
  }

  /** The backups of a server `principal` may see, newest first (a 404 for any other server). */
  async serverBackups(principal: Principal, serverId: string): Promise<BackupEntry[]> {
    return this.backups.list(this.server(principal, serverId).id);
  }

  /** The completed restores of a server `principal` may see, newest first (a 404 for any other server). */
  async serverRestores(principal: Principal, serverId: string): Promise<RestoreEntry[]> {
    return (await this.restores?.list(this.server(principal, serverId).id)) ?? [];
  }

  /**
   * Remove a restore of a server `principal` may act on: its entry at once, its
   * directory at once when it is on this machine, otherwise by a worker process
   * of its machine. A restore that is not listed (never, or no longer) is a 404.
   */
  async removeRestore(principal: Principal, serverId: string, restoreId: string): Promise<{ entry: RestoreEntry; directoryDeleted: boolean }> {
    const server = this.server(principal, serverId);
    const entry = await this.restores?.remove(server.id, restoreId);
    if (!entry) throw new NotFoundError(`Restore "${restoreId}" of server "${server.id}"`, 'RESTORE_NOT_FOUND');
    const deleted = await this.restores!.deletePending();
    return { entry, directoryDeleted: deleted.includes(entry.directory) };
  }

  /** The newest scan records of a server `principal` may see, newest first (a 404 for any other server). */
  async recentScans(principal: Principal, serverId: string, limit: number): Promise<StoredRecord[]> {
    return this.records.recent('scan', this.server(principal, serverId).id, limit);
  }

  /** The restore items of a list whose backup does not exist (or is not the server's), as 400 problems. */
  private async missingBackups(items: ReadonlyArray<{ item: Submission; index: number }>): Promise<ItemError[]> {
    const restores = items.filter(({ item }) => familyOf(item.type) === restoreFamily);
    const found = await Promise.all(
      restores.map(({ item }) => this.backups.get(item.data.serverId, (item.data as RestoreData).backupId)),
    );
    return restores
      .filter((_, i) => found[i] === undefined)
      .map(({ item, index }) => ({
        index,
        code: 'UNKNOWN_BACKUP',
        message: `data.backupId: server "${item.data.serverId}" has no backup "${(item.data as RestoreData).backupId}" (see GET /api/servers/${item.data.serverId}/backups)`,
      }));
  }

  /** A page of the servers `principal` may see, by id, after `cursor` (a 400 when it is not one this API returned). */
  servers(principal: Principal, page: { limit: number; cursor?: string | undefined }): ServerPage {
    return cursorPage(this.inventory.page(visibleTenant(principal), page.limit, page.cursor));
  }

  /** The server `principal` may see, or a 404 identical to a missing one. */
  server(principal: Principal, id: string): Server {
    const server = this.inventory.get(id, visibleTenant(principal));
    if (!server) throw new NotFoundError(`Server "${id}"`, 'SERVER_NOT_FOUND');
    return server;
  }

  /** The server a job of `type` may run on for `principal`, or the 400 that says why not. */
  private target(principal: Principal, type: JobType, data: JobData): Server {
    const queue = queueOfType(type);
    const server = this.inventory.get(data.serverId, visibleTenant(principal));
    if (!server) {
      throw new BadRequestError(`data.serverId: there is no server "${data.serverId}" in the inventory`, 'UNKNOWN_SERVER');
    }
    if (!declaresKind(server, queue)) {
      throw new BadRequestError(`data.serverId: server "${server.id}" declares no "${queue}" section, so it cannot run ${type} jobs`, 'KIND_NOT_DECLARED');
    }
    if (familyOf(type) === backupFamily && (data as BackupData).encryption && !this.encryption) {
      throw new BadRequestError(
        'data.encryption: encrypted backups need BACKUP_ENCRYPTION_KEY, which this server does not have; ask its operator, or back up without encryption',
        'ENCRYPTION_NOT_CONFIGURED',
      );
    }
    return server;
  }

  /** The server a job of `type` with `data` would run on for `principal`, or the 400 that says why it cannot (schedules check this once, up front). */
  checkTarget(principal: Principal, type: JobType, data: JobData): Server {
    return this.target(principal, type, data);
  }

  private envelope(principal: Principal, server: Server, data: JobData, options?: JobOptions): JobEnvelope {
    return { tenant: server.tenant, requestedBy: principal.sub, recordId: randomUUID(), ...(options?.timeoutSec ? { timeoutSec: options.timeoutSec } : {}), input: data };
  }

  async submit(principal: Principal, type: JobType, data: JobData, options: JobOptions = {}): Promise<Submitted> {
    const envelope = this.envelope(principal, this.target(principal, type, data), data, options);
    const [missing] = await this.missingBackups([{ item: { type, data }, index: 0 }]);
    if (missing) throw new BadRequestError(missing.message, missing.code);
    await this.quota?.admit(new Map([[envelope.tenant, 1]]));
    const added = await this.store.add(type, envelope, options);
    return { ...added, type, recordId: envelope.recordId };
  }

  /** The server the item at `index` of a bulk list runs on, or why it cannot run (unknown server, kind not declared, ...). */
  private checkItem(principal: Principal, { type, data }: Submission, index: number): { server: Server } | { problem: ItemError } {
    try {
      return { server: this.target(principal, type, data) };
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      return { problem: { index, code: err.code, message: `jobs[${index}].${err.message}` } };
    }
  }

  /** Why the item at `index` of a bulk list cannot run, or undefined when it can. */
  itemProblem(principal: Principal, item: Submission, index: number): ItemError | undefined {
    const checked = this.checkItem(principal, item, index);
    return 'problem' in checked ? checked.problem : undefined;
  }

  /**
   * Enqueue a list of jobs, all or none: every item is checked first, and one
   * bad item refuses the whole list with a 400 that names each bad item.
   * The accepted list is enqueued in one round trip.
   */
  async submitBulk(principal: Principal, items: ReadonlyArray<Submission>): Promise<Submitted[]> {
    const problems: ItemError[] = [];
    const prepared: Array<{ type: JobType; envelope: JobEnvelope; options?: JobOptions }> = [];
    items.forEach((item, index) => {
      const checked = this.checkItem(principal, item, index);
      if ('problem' in checked) problems.push(checked.problem);
      else prepared.push({ type: item.type, envelope: this.envelope(principal, checked.server, item.data, item.options), options: item.options });
    });
    if (problems.length === 0) {
      const wellAimed = items.map((item, index) => ({ item, index }));
      for (const missing of await this.missingBackups(wellAimed)) {
        problems.push({ ...missing, message: `jobs[${missing.index}].${missing.message}` });
      }
    }
    if (problems.length > 0) throw new BulkInvalidError(problems, items.length);
    const perTenant = new Map<string, number>();
    for (const p of prepared) perTenant.set(p.envelope.tenant, (perTenant.get(p.envelope.tenant) ?? 0) + 1);
    await this.quota?.admit(perTenant);
    const added = await this.store.addBulk(prepared);
    return added.map((a, i) => ({ ...a, type: prepared[i]!.type, recordId: prepared[i]!.envelope.recordId }));
  }
}
