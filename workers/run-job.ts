import { createHash } from 'node:crypto';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Config } from '../src/config.js';
import { declaresKind, type Inventory, type Server } from '../src/inventory.js';
import { indexJob } from '../src/store/job-store.js';
import { envelopeSchema, queueOfType, JOB_TYPES, SCHEDULED_RECORD, type JobEnvelope, type JobType, type QueueName } from '../src/jobs/index.js';
import { ProgressReporter } from './progress.js';
import type { BackupCatalog } from '../src/backups/catalog.js';
import { CANCELLED, type CancelRequests } from '../src/coordination/cancel-requests.js';
import type { RecordStore } from '../src/store/records.js';
import type { TenantSlots } from '../src/coordination/tenant-slots.js';
import type { HeldLock, ServerLocks } from '../src/coordination/server-locks.js';

export type WorkerDeps = {
  config: Config;
  inventory: Inventory;
  records: RecordStore;
  logger: Logger;
  /** Absent in the benchmark's bare wiring: no per-server locks, no cancel requests. */
  locks?: ServerLocks;
  cancels?: CancelRequests;
  catalog?: BackupCatalog;
  /** The workers' connection, for writes that belong to no store (indexing a schedule's runs). */
  redis?: Redis;
  /** Fair scheduling between tenants; absent in the benchmark's bare wiring. */
  slots?: TenantSlots;
  /** Publish "job X has new log lines" for event streams. */
  notifyLog?: (jobId: string) => Promise<unknown>;
};

/** A record id (UUID-shaped, as backup ids are) derived from a job id: the same for every attempt of the job. */
export function recordIdOf(jobId: string): string {
  const b = createHash('sha256').update(jobId).digest();
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Queues whose jobs take the per-server lock: two backups or two updates of one server never overlap. */
const LOCKED_QUEUES: ReadonlySet<QueueName> = new Set(['backup', 'update']);
/** How long a job that found its server busy waits (delayed) before it looks again. */
export const LOCK_RETRY_MS = 1000;
/** A job over its tenant's cap waits this long, plus up to as much again (spread, so waiting jobs do not come back at once). */
export const FAIR_RETRY_MS = 1000;

/**
 * Lines a job writes to its log (GET /api/jobs/:id/logs), in order, without
 * making the work wait for Redis; `flush()` waits for all of them.
 */
export class JobLog {
  private chain: Promise<unknown> = Promise.resolve();
  private notifying = false;
  constructor(
    private readonly job: Job,
    /** Tell listeners (GET /api/jobs/:id/events) that new lines are there; once per batch of lines. */
    private readonly notify?: (jobId: string) => Promise<unknown>,
  ) {}

  line(text: string): void {
    this.chain = this.chain.then(() => this.job.log(text)).catch(() => {});
    if (this.notify && !this.notifying) {
      this.notifying = true;
      this.chain = this.chain
        .then(() => {
          this.notifying = false;
          return this.notify!(this.job.id!);
        })
        .catch(() => {});
    }
  }

  /** A step of the work, as opposed to a command's own output. */
  step(text: string): void {
    this.line(`[jobs-api] ${text}`);
  }

  flush(): Promise<unknown> {
    return this.chain;
  }
}

/** What a processor gets besides its job: the verified server and input, progress, a job logger. */
export type JobContext<D> = {
  job: Job<JobEnvelope>;
  type: JobType;
  input: D;
  server: Server;
  recordId: string;
  progress: ProgressReporter;
  log: Logger;
  /** The job's own log, which callers read. */
  jobLog: JobLog;
  /** Aborted when someone cancels the job: stop, clean up, throw. */
  signal: AbortSignal;
  deps: WorkerDeps;
};

export type Processor<D> = (ctx: JobContext<D>) => Promise<Record<string, unknown>>;

/**
 * The steps every job shares: 10 started, re-parse the data with the schema
 * the route used (an invalid job fails without retries), take the server's
 * lock for backups and updates (when another job holds it, the job goes back
 * to `delayed` and looks again after LOCK_RETRY_MS: it waits, it does not
 * fail), 20 server verified, then the processor's own work (which ends by
 * storing its record), then 100.
 * Progress is written as the work goes (see ProgressReporter) and never makes
 * it wait; a completed job reads as 100.
 * A cancelled job (POST /api/jobs/:id/cancel) fails with the reason
 * `cancelled` and no further attempts.
 */
export function runJob<S extends z.ZodType>(
  queue: QueueName,
  schemas: Partial<Record<JobType, S>>,
  processor: Processor<z.output<S>>,
  deps: WorkerDeps,
) {
  // One envelope schema per job type, built once: building a zod schema per job costs more than the check.
  const envelopes = new Map(
    Object.entries(schemas)
      .filter(([type]) => (JOB_TYPES as readonly string[]).includes(type) && queueOfType(type as JobType) === queue)
      .map(([type, schema]) => [type, envelopeSchema(schema as S)]),
  );
  const noSignal = new AbortController().signal;
  // Whom each job waiting for a server's lock last said it waits for (one log line per holder, not one a second).
  const waitingOn = new Map<string, string>();
  // BullMQ hands the processor an abort signal only when it declares three parameters (no default values: they do not count).
  return async (job: Job<JobEnvelope>, token?: string, abortSignal?: AbortSignal): Promise<Record<string, unknown>> => {
    const signal = abortSignal ?? noSignal;
    const log = deps.logger.child({ queue, jobId: job.id, type: job.name, attempt: job.attemptsMade + 1 });
    const progress = new ProgressReporter(
      (v) => job.updateProgress(v),
      (err) => log.debug({ err: err.message }, 'progress not written'),
    );
    const jobLog = new JobLog(job, deps.notifyLog);
    progress.milestone(10);

    const type = job.name as JobType;
    const schema = envelopes.get(type);
    if (!schema) throw new UnrecoverableError(`unknown job type "${job.name}" for the ${queue} queue`);
    const parsed = schema.safeParse(job.data);
    if (!parsed.success) {
      progress.finish();
      const issue = parsed.error.issues[0];
      throw new UnrecoverableError(`invalid job data: ${issue?.path.join('.')}: ${issue?.message}`);
    }
    const envelope = parsed.data as JobEnvelope<z.output<S>>;
    if (envelope.recordId === SCHEDULED_RECORD) {
      // A schedule's run: its own record id (the same for every attempt of this run), and an entry in the listing index.
      envelope.recordId = recordIdOf(job.id!);
      if (deps.redis) await indexJob(deps.redis, deps.config.queuePrefix, job.id!, envelope.tenant, job.timestamp);
    }
    const serverId = (envelope.input as { serverId: string }).serverId;
    const server = deps.inventory.get(serverId, envelope.tenant);
    if (!server || !declaresKind(server, queue)) {
      progress.finish();
      throw new UnrecoverableError(`server "${serverId}" is no longer in the inventory with a ${queue} section`);
    }
    // A cancel that arrived while no process was running the job (or before this one tracked it).
    const stopReason = deps.cancels ? await deps.cancels.requested(job) : undefined;
    if (stopReason !== undefined) {
      progress.finish();
      await deps.records.finish(queue, envelope.recordId, 'failed', { error: stopReason }).catch(() => {});
      throw new UnrecoverableError(stopReason);
    }

    // Wait (back to delayed, not an attempt) while the tenant is at its cap or the server is busy.
    const wait = async (why: string, retryMs: number): Promise<never> => {
      progress.finish();
      if (waitingOn.get(job.id!) !== why) {
        if (waitingOn.size >= 10_000) waitingOn.clear();
        waitingOn.set(job.id!, why);
        jobLog.step(`waiting: ${why}`);
        await jobLog.flush();
      }
      await job.moveToDelayed(Date.now() + retryMs, token);
      throw new DelayedError(why);
    };
    let slot: { release(): void } | undefined;
    if (deps.slots) {
      const got = await deps.slots.acquire(queue, envelope.tenant, job.id!);
      if (!('held' in got)) {
        await wait(
          `tenant ${envelope.tenant} has ${got.active} of its ${got.cap} active ${queue} jobs running; this job runs when one ends`,
          FAIR_RETRY_MS + Math.floor(Math.random() * FAIR_RETRY_MS),
        );
      }
      slot = (got as { held: { release(): void } }).held;
    }
    let lock: HeldLock | undefined;
    if (deps.locks && LOCKED_QUEUES.has(queue)) {
      const got = await deps.locks.acquire(queue, server.id, job.id!);
      if ('holder' in got) {
        slot?.release();
        await wait(`job ${got.holder} holds the ${queue} lock of server ${server.id}; this job runs when it is free`, LOCK_RETRY_MS);
      }
      lock = (got as { held: HeldLock }).held;
    }
    waitingOn.delete(job.id!);
    progress.milestone(20);

    log.info('job started');
    const started = Date.now();
    try {
      signal.throwIfAborted();
      // The processor stores its own record of success; failures are recorded here.
      const result = await processor({ job, type, input: envelope.input, server, recordId: envelope.recordId, progress, log, jobLog, signal, deps });
      progress.finish(100);
      log.info({ ms: Date.now() - started }, 'job completed');
      return result;
    } catch (err) {
      progress.finish();
      const stopped = signal.aborted;
      const reason = stopped ? String(signal.reason ?? CANCELLED) : (err as Error).message;
      if (stopped) {
        jobLog.step(`${reason}: the work was stopped`);
        await deps.cancels?.take(job.id!).catch(() => {});
      }
      await deps.records.finish(queue, envelope.recordId, 'failed', { error: reason }).catch(() => {});
      log.warn({ ms: Date.now() - started, err: reason }, 'job attempt failed');
      throw stopped ? new UnrecoverableError(reason) : err;
    } finally {
      slot?.release();
      await jobLog.flush();
      await lock?.release();
    }
  };
}
