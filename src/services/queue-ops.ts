import { Job, type Queue } from 'bullmq';
import type { CancelRequests } from '../coordination/cancel-requests.js';
import { foundJob, jobError } from './outcomes.js';
import type { JobStore, JobView } from '../store/job-store.js';
import { QUEUES, QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { queueCounts, type QueueCounts } from '../observability/queue-stats.js';

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

/**
 * The queue-wide operations of an operator (admin): status, pause and
 * resume, drain, clean, stuck jobs, bulk retry. Each acts through BullMQ's own
 * commands; jobs they remove leave the listing index through the index sweep.
 */
export class QueueOps {
  constructor(
    private readonly queues: Record<QueueName, Queue>,
    private readonly store: JobStore,
    private readonly cancels: CancelRequests,
    private readonly rateLimits: Partial<Record<QueueName, { max: number; duration: number }>> = {},
    /** A worker process's concurrency per queue (QUEUE_CONCURRENCY). */
    private readonly concurrency: Readonly<Record<QueueName, number>> = Object.fromEntries(QUEUE_NAMES.map((q) => [q, QUEUES[q].concurrency])) as Record<QueueName, number>,
  ) {}

  async status(queue: QueueName): Promise<QueueStatus> {
    const q = this.queues[queue];
    const [paused, workers, counts] = await Promise.all([q.isPaused(), q.getWorkersCount(), queueCounts(q, this.store.redis)]);
    return { queue, paused, workers, concurrency: this.concurrency[queue], rateLimit: this.rateLimits[queue] ?? null, counts };
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
    await this.queues[queue].drain(delayed);
    const after = await queueCounts(this.queues[queue], this.store.redis);
    return { waiting: Math.max(0, before.waiting - after.waiting), delayed: delayed ? Math.max(0, before.delayed - after.delayed) : 0 };
  }

  /** Remove up to `limit` jobs in `state` older than `olderThanMs` (by finish time for finished jobs, creation otherwise). */
  async clean(queue: QueueName, state: CleanableState, olderThanMs: number, limit: number): Promise<string[]> {
    const q = this.queues[queue];
    if (state !== 'waiting') return q.clean(olderThanMs, limit, state);
    const waiting = await q.clean(olderThanMs, limit, 'wait');
    if (waiting.length >= limit) return waiting;
    return [...waiting, ...(await q.clean(olderThanMs, limit - waiting.length, 'prioritized'))];
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
    const stuck = await this.stuck(queue, olderThanMs);
    const reason = `unstuck by an operator: active for more than ${olderThanMs} ms`;
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
      if (job) await job.moveToFailed(new Error(reason), '0', false).catch(() => {});
      await this.cancels.withdraw(id);
    }
    return { jobs: stuck.map((j) => j.id) };
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
