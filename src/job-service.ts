import { randomUUID } from 'node:crypto';
import { AppError, BadRequestError, BulkInvalidError, NotFoundError, type ItemError } from './errors.js';
import { declaresKind, type Inventory, type Server } from './inventory.js';
import type { JobStore } from './job-store.js';
import {
  queueOfType,
  type BackupData,
  type JobData,
  type JobEnvelope,
  type JobOptions,
  type JobState,
  type JobType,
  type QueueName,
} from './job-types.js';
import { visibleTenant, type Principal } from './tenant.js';

/** One job to enqueue, as a validated request body describes it. */
export type Submission = { type: JobType; data: JobData; options?: JobOptions };

export type Submitted = { jobId: string; queue: QueueName; type: JobType; state: JobState; recordId: string };

/**
 * Turns a validated request into a job: checks the server is one the caller
 * may act on and declares this kind of work, then enqueues it for the
 * server's tenant.
 */
export class JobService {
  constructor(
    readonly store: JobStore,
    readonly inventory: Inventory,
  ) {}

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
    if (queue === 'backup') {
      const backup = data as BackupData;
      if (backup.encryption) {
        throw new BadRequestError('data.encryption: encrypted backups are not available on this server (no encryption key is configured)', 'ENCRYPTION_NOT_CONFIGURED');
      }
      if (backup.backup_type === 'incremental') {
        throw new BadRequestError('data.backup_type: incremental backups are not available yet; use "full"', 'INCREMENTAL_NOT_SUPPORTED');
      }
    }
    return server;
  }

  private envelope(principal: Principal, server: Server, data: JobData): JobEnvelope {
    return { tenant: server.tenant, requestedBy: principal.sub, recordId: randomUUID(), input: data };
  }

  async submit(principal: Principal, type: JobType, data: JobData, options: JobOptions = {}): Promise<Submitted> {
    const envelope = this.envelope(principal, this.target(principal, type, data), data);
    const added = await this.store.add(type, envelope, options);
    return { ...added, type, recordId: envelope.recordId };
  }

  /**
   * Enqueue a list of jobs, all or none: every item is checked first, and one
   * bad item refuses the whole list with a 400 that names each bad item.
   * The accepted list is enqueued in one round trip.
   */
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

  async submitBulk(principal: Principal, items: ReadonlyArray<Submission>): Promise<Submitted[]> {
    const problems: ItemError[] = [];
    const prepared: Array<{ type: JobType; envelope: JobEnvelope; options?: JobOptions }> = [];
    items.forEach((item, index) => {
      const checked = this.checkItem(principal, item, index);
      if ('problem' in checked) problems.push(checked.problem);
      else prepared.push({ type: item.type, envelope: this.envelope(principal, checked.server, item.data), options: item.options });
    });
    if (problems.length > 0) throw new BulkInvalidError(problems, items.length);
    const added = await this.store.addBulk(prepared);
    return added.map((a, i) => ({ ...a, type: prepared[i]!.type, recordId: prepared[i]!.envelope.recordId }));
  }
}
