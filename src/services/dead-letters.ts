import type { Redis } from 'ioredis';
import { AppError, ConflictError, NotFoundError } from '../errors.js';
import type { JobService } from './jobs.js';
import type { JobStore, JobView } from '../store/job-store.js';
import type { JobData, QueueName } from '../jobs/index.js';
import { visibleTenant, type Principal } from '../tenant.js';

/** How many failed jobs grouping and filtered replay look at, newest first. */
export const DEAD_LETTER_SCAN = 10_000;
const REPLAYED_TTL_SECONDS = 8 * 24 * 3600;

export type DeadLetter = JobView & { errorType: string; replayedAs: string | null };

/**
 * The shape of a failure reason without its particulars, so that failures of
 * one cause group together: first line, numbers, ids and quoted values
 * replaced, at most 120 characters.
 */
export function errorType(reason: string | null): string {
  const first = (reason ?? 'unknown error').split('\n', 1)[0]!;
  return first
    .replace(/"[^"]*"|'[^']*'/g, '"…"')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<id>')
    .replace(/\b(backup|scan|update)_[A-Za-z0-9_-]{22}\b/g, '<job>')
    .replace(/\d+(\.\d+)?/g, 'N')
    .slice(0, 120)
    .trim();
}

/**
 * Dead letters: jobs that failed for good (attempts exhausted, or a failure
 * retrying cannot fix). In BullMQ a job with attempts left waits in
 * `delayed`, so these are exactly the jobs in `failed`. A tenant sees and
 * acts on its own; admin on all.
 */
export class DeadLetters {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly store: JobStore,
    private readonly jobs: JobService,
  ) {}

  private replayedKey(id: string): string {
    return `${this.prefix}:jobsapi:replayed:${id}`;
  }

  private async decorate(views: JobView[]): Promise<DeadLetter[]> {
    if (views.length === 0) return [];
    const replayed = await this.redis.mget(...views.map((v) => this.replayedKey(v.id)));
    return views.map((v, i) => ({ ...v, errorType: errorType(v.failedReason), replayedAs: replayed[i] ?? null }));
  }

  /** A page of dead letters, newest first; with `errorContains` a page may hold fewer than `limit` while `nextCursor` is set. */
  async list(
    principal: Principal,
    filter: { queue?: QueueName; errorContains?: string; limit: number; cursor?: string },
  ): Promise<{ jobs: DeadLetter[]; nextCursor: string | null }> {
    const page = await this.store.list({ tenant: visibleTenant(principal), state: 'failed', queue: filter.queue, limit: filter.limit, cursor: filter.cursor });
    const needle = filter.errorContains?.toLowerCase();
    const jobs = needle ? page.jobs.filter((j) => (j.failedReason ?? '').toLowerCase().includes(needle)) : page.jobs;
    return { jobs: await this.decorate(jobs), nextCursor: page.nextCursor };
  }

  /** Up to DEAD_LETTER_SCAN dead letters visible to `principal`, newest first. */
  private async scan(principal: Principal, queue?: QueueName, errorContains?: string, max = DEAD_LETTER_SCAN): Promise<{ jobs: JobView[]; truncated: boolean }> {
    const out: JobView[] = [];
    let cursor: string | undefined;
    let seen = 0;
    const needle = errorContains?.toLowerCase();
    do {
      const page = await this.store.list({ tenant: visibleTenant(principal), state: 'failed', queue, limit: 100, cursor });
      for (const j of page.jobs) {
        seen += 1;
        if (!needle || (j.failedReason ?? '').toLowerCase().includes(needle)) out.push(j);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor && seen < DEAD_LETTER_SCAN && out.length < max);
    return { jobs: out.slice(0, max), truncated: cursor !== undefined };
  }

  /** Dead letters grouped by error type: count, queues, and the newest example. */
  async errors(principal: Principal, queue?: QueueName) {
    const { jobs, truncated } = await this.scan(principal, queue);
    const groups = new Map<string, { errorType: string; count: number; queues: Set<QueueName>; newest: JobView }>();
    for (const j of jobs) {
      const type = errorType(j.failedReason);
      const g = groups.get(type);
      if (!g) groups.set(type, { errorType: type, count: 1, queues: new Set([j.queue]), newest: j });
      else {
        g.count += 1;
        g.queues.add(j.queue);
      }
    }
    return {
      scanned: jobs.length,
      truncated,
      groups: [...groups.values()]
        .sort((a, b) => b.count - a.count)
        .map((g) => ({
          errorType: g.errorType,
          count: g.count,
          queues: [...g.queues].sort(),
          newest: { jobId: g.newest.id, type: g.newest.type, failedReason: g.newest.failedReason, finishedAt: g.newest.finishedAt },
        })),
    };
  }

  /**
   * Enqueue each dead letter again as a new job with the same type and data
   * (checked against the inventory as any enqueue is). The dead letter stays
   * (listed with `replayedAs`) until removed; one already replayed is skipped.
   */
  async replay(
    principal: Principal,
    which: { ids: string[] } | { queue?: QueueName; errorContains?: string; limit: number },
  ): Promise<{ replayed: Array<{ from: string; to: string }>; skipped: Array<{ id: string; reason: string }> }> {
    const tenant = visibleTenant(principal);
    const skipped: Array<{ id: string; reason: string }> = [];
    let candidates: JobView[];
    if ('ids' in which) {
      candidates = [];
      for (const id of which.ids) {
        const v = await this.store.get(id, tenant);
        if (!v) skipped.push({ id, reason: 'no such job' });
        else if (v.state !== 'failed') skipped.push({ id, reason: `it is ${v.state}, not failed` });
        else candidates.push(v);
      }
    } else {
      candidates = (await this.scan(principal, which.queue, which.errorContains, which.limit)).jobs;
    }
    const replayed: Array<{ from: string; to: string }> = [];
    const already = candidates.length ? await this.redis.mget(...candidates.map((c) => this.replayedKey(c.id))) : [];
    for (const [i, v] of candidates.entries()) {
      if (already[i]) {
        skipped.push({ id: v.id, reason: `already replayed as ${already[i]}` });
        continue;
      }
      try {
        const added = await this.jobs.submit(principal, v.type, v.data as JobData, { attempts: v.maxAttempts });
        await this.redis.set(this.replayedKey(v.id), added.jobId, 'EX', REPLAYED_TTL_SECONDS);
        replayed.push({ from: v.id, to: added.jobId });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        skipped.push({ id: v.id, reason: err.message });
      }
    }
    return { replayed, skipped };
  }

  async remove(principal: Principal, id: string): Promise<void> {
    const tenant = visibleTenant(principal);
    const v = await this.store.get(id, tenant);
    if (!v) throw new NotFoundError(`Job "${id}"`, 'JOB_NOT_FOUND');
    if (v.state !== 'failed') throw new ConflictError(`Job "${id}" is ${v.state}; only a failed job is a dead letter.`, 'JOB_NOT_FAILED');
    const out = await this.store.remove(id, tenant);
    if (out.status === 'missing') throw new NotFoundError(`Job "${id}"`, 'JOB_NOT_FOUND');
    await this.redis.del(this.replayedKey(id));
  }
}
