import { Job, UnrecoverableError, type Queue } from 'bullmq';
import type { FairDispatch } from '../coordination/fair-dispatch.js';
import { CANCELLED, type CancelRequests } from '../coordination/cancel-requests.js';
import { FINISHED, readThroughput, type Finished, type MinuteBucket } from '../coordination/worker-registry.js';
import { foundJob, jobError } from './outcomes.js';
import { serverOfInput, type JobStore, type JobView } from '../store/job-store.js';
import { QUEUES, QUEUE_NAMES, type JobType, type QueueName } from '../jobs/index.js';
import { queueCounts, type QueueCounts } from '../observability/queue-stats.js';
import { redisKeys } from '../redis/keys.js';
import { parseConcurrency } from '../coordination/concurrency-overrides.js';
import { DELAY_WAITING_LUA } from '../redis/lua/queue-ops.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiDelayWaiting(...keysAndArgs: Array<string | number>): Promise<number>;
  }
}

export type QueueStatus = {
  queue: QueueName;
  paused: boolean;
  workers: number;
  concurrency: number;
  /** BullMQ's limiter from QUEUE_RATE_LIMITS: at most `max` jobs start per `duration` ms; null when unlimited. */
  rateLimit: { max: number; duration: number } | null;
  counts: QueueCounts;
};

/** States `POST /api/queues/:queue/clean` may empty (never `active`: those jobs are being worked on). */
export const CLEANABLE_STATES = ['completed', 'failed', 'delayed', 'waiting'] as const;
export type CleanableState = (typeof CLEANABLE_STATES)[number];

/** How long unstick waits for a live worker to stop a stuck job before it moves the job itself. */
const UNSTICK_GRACE_MS = 3000;

/** Waiting jobs moved to delayed per script call: Redis serves other clients between two calls. */
const DELAY_BATCH = 500;

/** How many of the latest finished jobs (completed and failed together) slow-jobs looks at. */
export const SLOW_JOBS_SCAN = 500;

/** A queue's finished jobs per minute over a window (GET /api/queues/:queue/throughput). */
export type Throughput = {
  queue: QueueName;
  windowMin: number;
  from: string;
  to: string;
  total: Record<Finished, number>;
  /** The average per minute over the window. */
  perMinute: Record<Finished, number>;
  buckets: MinuteBucket[];
};

/** One recently finished job and how long its (last) run took. */
export type SlowJob = {
  jobId: string;
  type: JobType;
  state: 'completed' | 'failed' | 'cancelled';
  serverId: string | null;
  tenant: string;
  durationMs: number;
  startedAt: string;
  finishedAt: string;
};

/**
 * The queue-wide operations of an operator (admin): status, pause and
 * resume, drain (or delay the waiting jobs), clean, stuck jobs, bulk retry,
 * throughput and the slowest recent jobs. Each acts through BullMQ's own
 * commands (delaying the waiting jobs is a script of ours, BullMQ's promote
 * the other way round); jobs they remove leave the listing index through the
 * index sweep, except remove-stuck's, removed with their entries.
 */
export class QueueOps {
  constructor(
    private readonly queues: Record<QueueName, Queue>,
    private readonly store: JobStore,
    private readonly cancels: CancelRequests,
    private readonly rateLimits: Partial<Record<QueueName, { max: number; duration: number }>> = {},
    /** A worker process's concurrency per queue (QUEUE_CONCURRENCY). */
    private readonly concurrency: Readonly<Record<QueueName, number>> = Object.fromEntries(QUEUE_NAMES.map((q) => [q, QUEUES[q].concurrency])) as Record<QueueName, number>,
    /** Fair dispatch: the jobs parked for their tenant's turn are waiting jobs too, put back among BullMQ's before a drain, delay or clean. */
    private readonly fair?: Pick<FairDispatch, 'overWaiting'>,
  ) {
    store.redis.defineCommand('jobsapiDelayWaiting', { numberOfKeys: 8, lua: DELAY_WAITING_LUA });
  }

  async status(queue: QueueName): Promise<QueueStatus> {
    const q = this.queues[queue];
    const [paused, workers, counts, override] = await Promise.all([
      q.isPaused(),
      q.getWorkersCount(),
      queueCounts(q, this.store.redis),
      this.store.redis.get(redisKeys(this.prefix(queue)).queueConcurrency(queue)),
    ]);
    // A worker:scale override is what every worker process runs now, over QUEUE_CONCURRENCY.
    const concurrency = parseConcurrency(override) ?? this.concurrency[queue];
    return { queue, paused, workers, concurrency, rateLimit: this.rateLimits[queue] ?? null, counts };
  }

  async all(): Promise<QueueStatus[]> {
    return Promise.all(QUEUE_NAMES.map((q) => this.status(q)));
  }

  async pause(queue: QueueName): Promise<QueueStatus> {
    await this.queues[queue].pause();
    return this.status(queue);
  }

  async resume(queue: QueueName): Promise<QueueStatus> {
    await this.queues[queue].resume();
    return this.status(queue);
  }

  /** Remove the waiting jobs (and the delayed ones with `delayed`); answers how many went. */
  async drain(queue: QueueName, delayed: boolean): Promise<{ waiting: number; delayed: number }> {
    const before = await queueCounts(this.queues[queue], this.store.redis);
    await this.overWaiting(queue, () => this.queues[queue].drain(delayed));
    const after = await queueCounts(this.queues[queue], this.store.redis);
    return { waiting: Math.max(0, before.waiting - after.waiting), delayed: delayed ? Math.max(0, before.delayed - after.delayed) : 0 };
  }

  /**
   * Move every waiting job to delayed, due in `delayMs`: they keep their id,
   * data, priority, attempts and log, and run when due (or when promoted).
   * One script call per batch; jobs that arrive meanwhile may be moved too.
   */
  async drainToDelayed(queue: QueueName, delayMs: number, now = Date.now()): Promise<{ moved: number; until: string }> {
    const q = this.queues[queue];
    const k = q.keys;
    const until = new Date(now + delayMs).toISOString();
    const line = `[jobs-api] delayed by an operator until ${until}: its queue was drained for ${Math.round(delayMs / 1000)} s`;
    const before = await queueCounts(q, this.store.redis);
    let moved = 0;
    await this.overWaiting(queue, async () => {
      for (;;) {
        const n = await this.store.redis.jobsapiDelayWaiting(k['']!, k.wait!, k.paused!, k.prioritized!, k.delayed!, k.meta!, k.marker!, k.events!, now, delayMs, DELAY_BATCH, line);
        moved += n;
        if (n < DELAY_BATCH || moved >= before.waiting) break;
      }
    });
    return { moved, until };
  }

  /** Remove up to `limit` jobs in `state` older than `olderThanMs` (by finish time for finished jobs, creation otherwise). */
  async clean(queue: QueueName, state: CleanableState, olderThanMs: number, limit: number): Promise<string[]> {
    const q = this.queues[queue];
    if (state !== 'waiting') return q.clean(olderThanMs, limit, state);
    return this.overWaiting(queue, async () => {
      const waiting = await q.clean(olderThanMs, limit, 'wait');
      if (waiting.length >= limit) return waiting;
      return [...waiting, ...(await q.clean(olderThanMs, limit - waiting.length, 'prioritized'))];
    });
  }

  /** A step over the waiting jobs, parked ones included (fair dispatch): they are BullMQ's for the step, and those it leaves wait their turn again. */
  private overWaiting<T>(queue: QueueName, step: () => Promise<T>): Promise<T> {
    return this.fair ? this.fair.overWaiting(queue, step) : step();
  }

  /** Jobs active for longer than `olderThanMs`, longest first. */
  async stuck(queue: QueueName, olderThanMs: number, now = Date.now()): Promise<JobView[]> {
    const active = await this.queues[queue].getActive(0, -1);
    const ids = active.filter((j) => j.processedOn !== undefined && now - j.processedOn > olderThanMs).map((j) => j.id!);
    const views = (await Promise.all(ids.map((id) => this.store.get(id, undefined)))).filter((v): v is JobView => v?.state === 'active');
    return views.sort((a, b) => Date.parse(a.processedAt!) - Date.parse(b.processedAt!));
  }

  /**
   * Move the stuck jobs to failed so they can be retried: the worker running
   * each one (if any still does) is asked to stop it; a job still active after
   * UNSTICK_GRACE_MS (its worker is hung or gone) is moved by force.
   */
  async unstick(queue: QueueName, olderThanMs: number): Promise<{ jobs: string[] }> {
    return { jobs: await this.stopStuck(queue, olderThanMs, `unstuck by an operator: active for more than ${olderThanMs} ms`, false) };
  }

  /**
   * Remove the stuck jobs entirely: their work is stopped as unstick stops it
   * (for good: a job moved by force is not retried), then each is removed with
   * its index entries. Answers the jobs removed (one a worker took again in
   * between, or that someone else removed, is not among them).
   */
  async removeStuck(queue: QueueName, olderThanMs: number): Promise<{ jobs: string[] }> {
    const stopped = await this.stopStuck(queue, olderThanMs, `removed by an operator: active for more than ${olderThanMs} ms`, true);
    const removed: string[] = [];
    for (const id of stopped) if ((await this.store.remove(id, undefined)).status === 'removed') removed.push(id);
    return { jobs: removed };
  }

  /** Ask the workers of the stuck jobs to stop them, and move by force those still active after the grace time. */
  private async stopStuck(queue: QueueName, olderThanMs: number, reason: string, forGood: boolean): Promise<string[]> {
    const stuck = await this.stuck(queue, olderThanMs);
    await Promise.all(stuck.map((j) => this.cancels.request(j.id, reason)));
    const deadline = Date.now() + UNSTICK_GRACE_MS;
    let left = stuck.map((j) => j.id);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const states = await Promise.all(left.map((id) => this.store.get(id, undefined)));
      left = left.filter((_, i) => states[i]?.state === 'active');
    }
    for (const id of left) {
      const job = await Job.fromId(this.queues[queue], id);
      // Token '0': BullMQ does not check the lock, which a hung or dead worker still holds.
      if (job) await job.moveToFailed(forGood ? new UnrecoverableError(reason) : new Error(reason), '0', false).catch(() => {});
      // The hung worker still holds the job's lock (and may renew it), which keeps BullMQ from removing the job.
      if (forGood) await this.store.redis.del(redisKeys(this.prefix(queue)).bullmq(queue).jobLock(id));
      await this.cancels.withdraw(id);
    }
    return stuck.map((j) => j.id);
  }

  /**
   * The jobs the workers finished per minute over the last `windowMin`
   * minutes (the current one included), with the average: counted by the
   * workers as jobs end, so exact whatever BullMQ's retention keeps.
   */
  async throughput(queue: QueueName, windowMin: number, now = Date.now()): Promise<Throughput> {
    const buckets = await readThroughput(this.store.redis, this.prefix(queue), queue, windowMin, now);
    const total = Object.fromEntries(FINISHED.map((f) => [f, buckets.reduce((sum, b) => sum + b[f], 0)])) as Record<Finished, number>;
    const perMinute = Object.fromEntries(FINISHED.map((f) => [f, Math.round((total[f] / windowMin) * 100) / 100])) as Record<Finished, number>;
    return { queue, windowMin, from: buckets[0]!.minute, to: new Date(now).toISOString(), total, perMinute, buckets };
  }

  /**
   * The slowest of the latest SLOW_JOBS_SCAN finished jobs (completed and
   * failed, newest first by finish time), longest run first: two ZREVRANGEs
   * and one pipeline of HMGETs, all on the queue's hash tag.
   */
  async slowJobs(queue: QueueName, limit: number): Promise<{ scanned: number; jobs: SlowJob[] }> {
    const q = this.queues[queue];
    const redis = this.store.redis;
    const [completed, failed] = await Promise.all([
      redis.zrevrange(q.keys.completed!, 0, SLOW_JOBS_SCAN - 1, 'WITHSCORES'),
      redis.zrevrange(q.keys.failed!, 0, SLOW_JOBS_SCAN - 1, 'WITHSCORES'),
    ]);
    const pairs = (flat: string[], ok: boolean) => Array.from({ length: flat.length / 2 }, (_, i) => ({ id: flat[2 * i]!, at: Number(flat[2 * i + 1]), ok }));
    const latest = [...pairs(completed, true), ...pairs(failed, false)].sort((a, b) => b.at - a.at).slice(0, SLOW_JOBS_SCAN);
    if (latest.length === 0) return { scanned: 0, jobs: [] };
    const p = redis.pipeline();
    for (const { id } of latest) p.hmget(`${q.keys['']}${id}`, 'name', 'data', 'processedOn', 'finishedOn', 'failedReason');
    const rows = (await p.exec()) ?? [];
    const jobs: SlowJob[] = [];
    rows.forEach(([err, values], i) => {
      const [name, data, processedOn, finishedOn, failedReason] = (values as Array<string | null> | null) ?? [];
      if (err || !name || !processedOn || !finishedOn) return;
      const envelope = parseEnvelope(data);
      jobs.push({
        jobId: latest[i]!.id,
        type: name as JobType,
        state: latest[i]!.ok ? 'completed' : failedReason === CANCELLED ? 'cancelled' : 'failed',
        serverId: serverOfInput(envelope.input) || null,
        tenant: typeof envelope.tenant === 'string' ? envelope.tenant : 'default',
        durationMs: Math.max(0, Number(finishedOn) - Number(processedOn)),
        startedAt: new Date(Number(processedOn)).toISOString(),
        finishedAt: new Date(Number(finishedOn)).toISOString(),
      });
    });
    jobs.sort((a, b) => b.durationMs - a.durationMs || Date.parse(b.finishedAt) - Date.parse(a.finishedAt));
    return { scanned: latest.length, jobs: jobs.slice(0, limit) };
  }

  private prefix(queue: QueueName): string {
    return this.queues[queue].opts.prefix ?? 'bull';
  }

  /**
   * Retry failed jobs of the queue: all, or those whose reason contains
   * `errorContains` (case-insensitive), newest first, at most `limit`.
   * `dryRun` only counts. Each retried job gets a fresh set of attempts.
   */
  async retryFailed(
    queue: QueueName,
    opts: { errorContains?: string; limit: number; dryRun: boolean },
  ): Promise<{ matched: number; retried: number; jobs: string[] }> {
    const matching = await this.failedMatching(queue, opts.errorContains, opts.limit);
    if (opts.dryRun) return { matched: matching.length, retried: 0, jobs: matching.map((j) => j.id!) };
    const retried: string[] = [];
    for (const job of matching) {
      try {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        retried.push(job.id!);
      } catch {
        // It left the failed state meanwhile (retried or removed by someone else).
      }
    }
    // They are no longer dead letters.
    if (retried.length > 0) await this.store.dead.reconcile(queue, retried.map((id) => ({ id })));
    return { matched: matching.length, retried: retried.length, jobs: retried };
  }

  /** Failed jobs, newest first, whose reason contains `errorContains`; pages through the failed set. */
  private async failedMatching(queue: QueueName, errorContains: string | undefined, limit: number): Promise<Job[]> {
    const needle = errorContains?.toLowerCase();
    const out: Job[] = [];
    const PAGE = 200;
    for (let start = 0; out.length < limit; start += PAGE) {
      const page = await this.queues[queue].getFailed(start, start + PAGE - 1);
      if (page.length === 0) break;
      for (const job of page) {
        if (!job) continue;
        if (needle && !(job.failedReason ?? '').toLowerCase().includes(needle)) continue;
        out.push(job);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** Run a delayed job now. */
  async promote(id: string, tenant: string | undefined): Promise<JobView> {
    const view = foundJob(id, await this.store.get(id, tenant));
    if (view.state !== 'delayed') throw jobError(id, { status: 'not-delayed', state: view.state });
    const job = await Job.fromId(this.queues[view.queue], id);
    try {
      await job!.promote();
    } catch {
      const now = foundJob(id, await this.store.get(id, tenant));
      throw jobError(id, { status: 'not-delayed', state: now.state });
    }
    return (await this.store.get(id, tenant)) ?? view;
  }
}

function parseEnvelope(raw: string | null | undefined): { tenant?: unknown; input?: unknown } {
  try {
    const v: unknown = raw ? JSON.parse(raw) : null;
    return v && typeof v === 'object' ? v : {};
  } catch {
    return {};
  }
}
