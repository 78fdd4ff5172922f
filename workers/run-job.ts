import { createHash } from 'node:crypto';
import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { declaresKind, type Server } from '../src/inventory.js';
import { indexJob, serverOfInput } from '../src/store/job-store.js';
import { redisKeys } from '../src/redis/keys.js';
import { laneOrder } from '../src/redis/lua/fair-dispatch.js';
import { envelopeSchema, JOB_TYPES_OF_QUEUE, SCHEDULED_RECORD, type JobEnvelope, type JobType, type QueueName } from '../src/jobs/index.js';
import { CANCELLED } from '../src/coordination/cancel-requests.js';
import type { HeldLock } from '../src/coordination/server-locks.js';
import type { HeldSlot } from '../src/coordination/tenant-slots.js';
import { SHUTDOWN_CUT, type WorkerDeps } from './deps.js';
import { JobLog } from './job-log.js';
import { ProgressReporter } from './progress.js';

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

/** A run's timeout when neither the job nor its server's section says (every section has its own default: see src/inventory.ts). */
const DEFAULT_TIMEOUT_SEC = 3600;

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
  /** Aborted when someone cancels the job or its run outlasts timeoutSec: stop, clean up, throw. */
  signal: AbortSignal;
  /** How long this run may take (the job's options.timeoutSec, else the server's for the kind). */
  timeoutSec: number;
  deps: WorkerDeps;
};

/** The work of a job type: its validated input in, its result out (the family's result type: see workers/registry.ts). */
export type Processor<D, R extends object = Record<string, unknown>> = (ctx: JobContext<D>) => Promise<R>;

/** One attempt of a job, as the steps before its processor see it. */
type Attempt = {
  queue: QueueName;
  job: Job<JobEnvelope>;
  token: string | undefined;
  deps: WorkerDeps;
  log: Logger;
  progress: ProgressReporter;
  jobLog: JobLog;
};

/** What a running job holds until it ends: its tenant's slot, a GLOBAL_MAX_ACTIVE slot and its server's lock. */
type Turn = { slot?: HeldSlot; global?: { release(): void }; lock?: HeldLock };

/**
 * The steps every job shares: re-parse the data with the schema
 * the route used (an invalid job fails without retries), take the server's
 * lock for backups and updates (when another job holds it, the job goes back
 * to `delayed` and looks again after LOCK_RETRY_MS: it waits, it does not
 * fail), 10 started and 20 server verified (written as one), then the processor's own work (which ends by
 * storing its record), then 100.
 * Progress is written as the work goes (see ProgressReporter) and never makes
 * it wait; a completed job reads as 100.
 * A cancelled job (POST /api/jobs/:id/cancel) fails with the reason
 * `cancelled` and no further attempts.
 */
export function runJob<S extends z.ZodType, R extends object>(
  queue: QueueName,
  schemas: Partial<Record<JobType, S>>,
  processor: Processor<z.output<S>, R>,
  deps: WorkerDeps,
) {
  // One envelope schema per job type, built once: building a zod schema per job costs more than the check.
  const envelopes = new Map(
    Object.entries(schemas)
      .filter(([type]) => (JOB_TYPES_OF_QUEUE[queue] as readonly string[]).includes(type))
      .map(([type, schema]) => [type, envelopeSchema(schema)]),
  );
  const noSignal = new AbortController().signal;
  // Whom each job waiting for a server's lock last said it waits for (one log line per holder, not one a second).
  const waitingOn = new Map<string, string>();
  // BullMQ hands the processor an abort signal only when it declares three parameters (no default values: they do not count).
  return async (job: Job<JobEnvelope>, token?: string, abortSignal?: AbortSignal): Promise<R> => {
    const signal = abortSignal ?? noSignal;
    const attempt = beginAttempt(queue, job, token, deps);
    const envelope = parseEnvelope<z.output<S>>(attempt, envelopes);
    failIfAttemptsSpentOnStalls(attempt);
    await adoptScheduledRun(attempt, envelope);
    const server = resolveServer(attempt, envelope);
    await honourPendingCancel(attempt, envelope.recordId);
    const turn = await waitForTurn(attempt, envelope.tenant, server, waitingOn);
    // 10 (started) and 20 (server verified) are reached once the job has its turn: one write, at the end of this
    // turn of the event loop, and none for a job that waited (parked or delayed) or ended within the turn.
    attempt.progress.milestone(10);
    attempt.progress.milestone(20);
    const { progress, log, jobLog } = attempt;
    const ctx: JobContext<z.output<S>> = {
      job,
      type: job.name as JobType,
      input: envelope.input,
      server,
      recordId: envelope.recordId,
      progress,
      log,
      jobLog,
      signal,
      timeoutSec: envelope.timeoutSec ?? server[queue]?.timeoutSec ?? DEFAULT_TIMEOUT_SEC,
      deps,
    };
    return run(queue, processor, ctx, turn, token);
  };
}

function beginAttempt(queue: QueueName, job: Job<JobEnvelope>, token: string | undefined, deps: WorkerDeps): Attempt {
  const log = deps.logger.child({ queue, jobId: job.id, type: job.name, attempt: job.attemptsMade + 1 });
  const progress = new ProgressReporter(
    (v) => job.updateProgress(v),
    (err) => log.debug({ err: err.message }, 'progress not written'),
  );
  const jobLog = new JobLog(job, deps.notifyLog);
  return { queue, job, token, deps, log, progress, jobLog };
}

/** The job's data as the route's schema reads it: data it does not read can never succeed, so the job fails without retries. */
function parseEnvelope<D>({ queue, job, progress }: Attempt, envelopes: ReadonlyMap<string, z.ZodType>): JobEnvelope<D> {
  const schema = envelopes.get(job.name);
  if (!schema) throw new UnrecoverableError(`unknown job type "${job.name}" for the ${queue} queue`);
  const parsed = schema.safeParse(job.data);
  if (!parsed.success) {
    progress.finish();
    const issue = parsed.error.issues[0];
    throw new UnrecoverableError(`invalid job data: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return parsed.data as JobEnvelope<D>;
}

/**
 * BullMQ's job scheduler adds a schedule's runs from one template, so they
 * come with a placeholder record id and without the listing-index entry the
 * API gives the jobs it adds: each run gets its own record id (the same for
 * every attempt of the run) and its entry here.
 */
async function adoptScheduledRun({ queue, job, deps }: Attempt, envelope: JobEnvelope<unknown>): Promise<void> {
  if (envelope.recordId !== SCHEDULED_RECORD) return;
  envelope.recordId = recordIdOf(job.id!);
  if (deps.redis) await indexJob(deps.redis, deps.config.queuePrefix, queue, job.id!, envelope.tenant, job.timestamp, serverOfInput(envelope.input));
}

/** The job's server, which may have left the inventory (or lost its section) since the job was added: then retries cannot help. */
function resolveServer({ queue, deps, progress }: Attempt, envelope: JobEnvelope<unknown>): Server {
  const serverId = (envelope.input as { serverId: string }).serverId;
  const server = deps.inventory.get(serverId, envelope.tenant);
  if (!server || !declaresKind(server, queue)) {
    progress.finish();
    throw new UnrecoverableError(`server "${serverId}" is no longer in the inventory with a ${queue} section`);
  }
  return server;
}

/**
 * A run cut short because its worker process died (BullMQ finds the job
 * stalled and runs it again) counts as an attempt: the job runs again while
 * failed attempts and such stalls stay under its attempts, then fails for good
 * saying why. (BullMQ alone would fail it at its second stall, whatever its
 * attempts: see MAX_STALLS in create-workers.ts.)
 */
function failIfAttemptsSpentOnStalls({ job, progress }: Attempt): void {
  const attempts = job.opts.attempts ?? 1;
  const stalls = job.stalledCounter ?? 0;
  if (stalls > 0 && job.attemptsMade + stalls >= attempts) {
    progress.finish();
    throw new UnrecoverableError(
      `its worker process stopped while running it ${stalls} time${stalls === 1 ? '' : 's'} (crashed or killed); with ${job.attemptsMade} failed attempt${job.attemptsMade === 1 ? '' : 's'}, its ${attempts} attempts are used up`,
    );
  }
}

/** A cancel that arrived while no process was running the job (or before this one tracked it). */
async function honourPendingCancel({ queue, job, deps, progress }: Attempt, recordId: string): Promise<void> {
  const stopReason = deps.cancels ? await deps.cancels.requested(job) : undefined;
  if (stopReason === undefined) return;
  progress.finish();
  await deps.records.finish(queue, recordId, 'failed', { error: stopReason }).catch(() => {});
  await noteCancelled(queue, job, stopReason, deps);
  throw new UnrecoverableError(stopReason);
}

/**
 * A job stopped on request fails in BullMQ with the reason `cancelled`;
 * its queue's set of cancelled jobs lets the counts and metrics tell it from
 * a failure (the job's own state reads `cancelled` from its reason).
 */
async function noteCancelled(queue: QueueName, job: Job<JobEnvelope>, reason: string, deps: WorkerDeps): Promise<void> {
  if (reason !== CANCELLED || !deps.redis) return;
  await deps.redis.zadd(redisKeys(deps.config.queuePrefix).cancelled(queue), Date.now(), job.id!).catch(() => {});
}

/**
 * The tenant's slot (its cap and its throttle), then a GLOBAL_MAX_ACTIVE
 * slot, then (backups and updates) the server's lock. A job that does not get
 * them all gives back what it took while it waits, so that it does not keep
 * its tenant's other jobs from running (nor count as one of its throttled starts).
 */
async function waitForTurn(attempt: Attempt, tenant: string, server: Server, waitingOn: Map<string, string>): Promise<Turn> {
  const { queue, job, deps } = attempt;
  const fairRetryMs = () => FAIR_RETRY_MS + Math.floor(Math.random() * FAIR_RETRY_MS);
  let slot: Turn['slot'];
  if (deps.slots) {
    // Its place among its tenant's jobs: at the cap, it may take the slot of a later one reserved but not started.
    const place = lanePlace(job);
    const got = await deps.slots.acquire(queue, tenant, job.id!, place.priority > 0 ? place : undefined);
    if ('throttled' in got) {
      const { max, perMs, freeAt } = got.throttled;
      const why = `tenant ${tenant} is throttled to ${max} ${queue} job start${max === 1 ? '' : 's'} per ${spell(perMs)} (queue:throttle-org), all taken; this job runs when the window frees one`;
      // Parked, dispatch starts it once the window lets one more start; without a priority, back when the window
      // lets one more start (spread a little: the jobs it holds do not all come back at once).
      return waitForTenant(attempt, tenant, waitingOn, why, Math.max(0, freeAt - Date.now()) + Math.floor(Math.random() * FAIR_RETRY_MS));
    }
    if ('behind' in got) {
      // Its tenant's jobs parked before it go first: it takes its place among them.
      const why = `tenant ${tenant} has ${got.behind} ${queue} job${got.behind === 1 ? '' : 's'} waiting for their turn; this job runs after those before it`;
      return waitForTenant(attempt, tenant, waitingOn, why, fairRetryMs());
    }
    if (!('held' in got)) {
      const why = `tenant ${tenant} has ${got.active} of its ${got.cap} active ${queue} jobs running; this job runs when one ends`;
      // Taken before fair dispatch saw it (a worker was idle), or back from a retry or a delay: it waits its tenant's turn with the others.
      return waitForTenant(attempt, tenant, waitingOn, why, fairRetryMs());
    }
    slot = got.held;
  }
  let global: Turn['global'];
  if (deps.global) {
    // A failed call gives back what the job took (its renewal would otherwise hold it for as long as the process lives).
    const got = await deps.global.acquire(job.id!).catch((err: unknown) => {
      slot?.giveBack();
      throw err;
    });
    if (!('held' in got)) {
      slot?.giveBack();
      return waitAgain(attempt, waitingOn, `${got.active} of the ${got.cap} jobs allowed at once over every queue (GLOBAL_MAX_ACTIVE) are running; this job runs when one ends`, fairRetryMs());
    }
    global = got.held;
  }
  let lock: HeldLock | undefined;
  if (deps.locks && LOCKED_QUEUES.has(queue)) {
    const got = await deps.locks.acquire(queue, server.id, job.id!).catch((err: unknown) => {
      slot?.giveBack();
      global?.release();
      throw err;
    });
    if ('holder' in got) {
      slot?.giveBack();
      global?.release();
      return waitAgain(attempt, waitingOn, `job ${got.holder} holds the ${queue} lock of server ${server.id}; this job runs when it is free`, LOCK_RETRY_MS);
    }
    lock = got.held;
  }
  if (deps.commands && queue === 'update') {
    // A worker process that died left its command running: end it (this machine), or wait for it (another).
    const leftover = await deps.commands.endLeftover(server.id);
    if (leftover.status === 'running') {
      slot?.giveBack();
      global?.release();
      await lock?.release();
      return waitAgain(attempt, waitingOn, `${leftover.why}; this job runs when it has ended`, LOCK_RETRY_MS);
    }
    if (leftover.status === 'ended') {
      attempt.log.warn({ pgid: leftover.entry.pgid, previousJob: leftover.entry.jobId }, 'ended the update command a dead worker process left running');
      attempt.jobLog.step(`ended the previous attempt's command (process group ${leftover.entry.pgid}), left running by a worker process that stopped`);
    }
  }
  waitingOn.delete(job.id!);
  return { slot, global, lock };
}

/** A throttle's interval as jobsctl takes it: 90s, 1m, 2h. */
function spell(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/**
 * A job its tenant has no turn for now: parked among its tenant's waiting jobs (fair dispatch starts it in turn;
 * not an attempt, no timer), or, without a priority (BullMQ keeps such a job outside the prioritized set that
 * dispatch works on), back to \`delayed\` for \`retryMs\`.
 */
async function waitForTenant(attempt: Attempt, tenant: string, waitingOn: Map<string, string>, why: string, retryMs: number): Promise<never> {
  const { queue, job, token, deps } = attempt;
  const place = lanePlace(job);
  if (place.priority === 0 || !deps.slots) return waitAgain(attempt, waitingOn, why, retryMs);
  await sayWhy(attempt, waitingOn, `waiting for its tenant's turn: ${why}`);
  // Back to its place among its tenant's jobs.
  await deps.slots.fair.putBack(queue, { id: job.id!, tenant, ...place }, () => job.moveToWait(token));
  throw new WaitingError();
}

/** A job's place among its tenant's jobs: its priority (0: none), then its creation and its place in its bulk request. */
function lanePlace(job: Job<JobEnvelope>): { priority: number; order: number } {
  return { priority: job.opts.priority ?? 0, order: laneOrder(job.timestamp, job.data.place) };
}

/** Back to `delayed`, not a failed attempt: waiting for a turn is not an error, and must not use up the job's retries. */
async function waitAgain(attempt: Attempt, waitingOn: Map<string, string>, why: string, retryMs: number): Promise<never> {
  const { job, token } = attempt;
  await sayWhy(attempt, waitingOn, `waiting: ${why}`);
  await job.moveToDelayed(Date.now() + retryMs, token);
  throw new DelayedError(why);
}

/** The job's progress ends for this run, and its log says why it waits: once per reason, not at every look. */
async function sayWhy({ job, progress, jobLog }: Attempt, waitingOn: Map<string, string>, line: string): Promise<void> {
  progress.finish();
  if (waitingOn.get(job.id!) === line) return;
  // A job removed while it waited never comes back to delete its entry.
  if (waitingOn.size >= 10_000) waitingOn.clear();
  waitingOn.set(job.id!, line);
  jobLog.step(line);
  await jobLog.flush();
}

/** A timeout that a kind's processor enforces itself, with its own message (an update command's): runJob's comes this much later, as a backstop. */
const SELF_TIMED: Partial<Record<QueueName, number>> = { update: 10_000 };

/** The reason a run that outlasted its timeout fails with. */
export class JobTimeout extends Error {
  override name = 'JobTimeout';
  constructor(readonly timeoutSec: number) {
    super(`timed out after ${timeoutSec}s (timeoutSec) and was stopped`);
  }
}

/** The processor's work; whatever its outcome, the job gives back what it held. */
async function run<D, R extends object>(queue: QueueName, processor: Processor<D, R>, outer: JobContext<D>, turn: Turn, token: string | undefined): Promise<R> {
  // The run's signal: a cancel or the shutdown (BullMQ's signal, forwarded), or the timeout. One controller that
  // both abort: AbortSignal.any costs more per job than a quick job's own work.
  const stop = new AbortController();
  const forward = () => stop.abort(outer.signal.reason);
  if (outer.signal.aborted) forward();
  else outer.signal.addEventListener('abort', forward, { once: true });
  const timeout = setTimeout(() => stop.abort(new JobTimeout(outer.timeoutSec)), outer.timeoutSec * 1000 + (SELF_TIMED[queue] ?? 0));
  const ctx: JobContext<D> = { ...outer, signal: stop.signal };
  const { job, recordId, progress, log, jobLog, signal, deps } = ctx;
  log.info({ timeoutSec: ctx.timeoutSec }, 'job started');
  const started = Date.now();
  deps.running?.set(job.id!, job.name);
  try {
    signal.throwIfAborted();
    // The processor stores its own record of success; failures are recorded here.
    const result = await processor(ctx);
    progress.finish(100);
    log.info({ ms: Date.now() - started }, 'job completed');
    return result;
  } catch (err) {
    progress.finish();
    if (signal.aborted && signal.reason === SHUTDOWN_CUT) {
      // The process is stopping: the work was stopped, the job goes back to run again, this attempt not counted.
      jobLog.step(`${SHUTDOWN_CUT}: the work was stopped; the job runs again (this attempt does not count)`);
      log.warn({ ms: Date.now() - started }, 'job cut short by the shutdown; it runs again');
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError(SHUTDOWN_CUT);
    }
    if (signal.reason instanceof JobTimeout && !outer.signal.aborted) {
      // Past its timeout: the work was stopped; the attempt fails like any other (retried while attempts are left).
      const reason = signal.reason.message;
      jobLog.step(reason);
      await deps.records.finish(queue, recordId, 'failed', { error: reason }).catch(() => {});
      log.warn({ ms: Date.now() - started, err: reason }, 'job attempt timed out');
      throw new Error(reason);
    }
    const stopped = signal.aborted;
    const reason = stopped ? String(signal.reason ?? CANCELLED) : (err as Error).message;
    if (stopped) {
      jobLog.step(`${reason}: the work was stopped`);
      await deps.cancels?.take(job.id!).catch(() => {});
      await noteCancelled(queue, job, reason, deps);
    }
    await deps.records.finish(queue, recordId, 'failed', { error: reason }).catch(() => {});
    log.warn({ ms: Date.now() - started, err: reason }, 'job attempt failed');
    throw stopped ? new UnrecoverableError(reason) : err;
  } finally {
    clearTimeout(timeout);
    outer.signal.removeEventListener('abort', forward);
    deps.running?.delete(job.id!);
    turn.slot?.release();
    turn.global?.release();
    await jobLog.flush();
    await turn.lock?.release();
  }
}
