import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import type { JobService } from './jobs.js';
import { foundJob, jobError, jobPage } from './outcomes.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import type { JobStore, JobView } from '../store/job-store.js';
import { JOB_IDS_IN_TEXT, type JobData, type QueueName } from '../jobs/index.js';
import { visibleTenant, type Principal } from '../tenant.js';

/** How many failed jobs grouping and filtered replay look at, newest first. */
export const DEAD_LETTER_SCAN = 10_000;
const REPLAYED_TTL_SECONDS = 8 * 24 * 3600;

export type DeadLetter = JobView & { errorType: string; replayedAs: string | null };
type Skipped = { id: string; reason: string };

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
    .replace(JOB_IDS_IN_TEXT, '<job>')
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
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly store: JobStore,
    private readonly jobs: JobService,
  ) {
    this.keys = redisKeys(prefix);
  }

  private replayedKey(id: string): string {
    return this.keys.replayed(id);
  }

  /** The job each dead letter was replayed as: one GET each, sent together (no MGET: on a Cluster the keys of different queues live on different nodes). */
  private replayedAs(ids: string[]): Promise<Array<string | null>> {
    return Promise.all(ids.map((id) => this.redis.get(this.replayedKey(id))));
  }

  private async decorate(views: JobView[]): Promise<DeadLetter[]> {
    if (views.length === 0) return [];
    const replayed = await this.replayedAs(views.map((v) => v.id));
    return views.map((v, i) => ({ ...v, errorType: errorType(v.failedReason), replayedAs: replayed[i] ?? null }));
  }

  /** A page of dead letters, newest first; with `errorContains` a page may hold fewer than `limit` while `nextCursor` is set. */
  async list(
    principal: Principal,
    filter: { queue?: QueueName; errorContains?: string; limit: number; cursor?: string },
  ): Promise<{ jobs: DeadLetter[]; nextCursor: string | null }> {
    const page = jobPage(await this.store.list({ tenant: visibleTenant(principal), state: 'failed', queue: filter.queue, limit: filter.limit, cursor: filter.cursor }));
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
      const page = jobPage(await this.store.list({ tenant: visibleTenant(principal), state: 'failed', queue, limit: 100, cursor }));
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
  ): Promise<{ replayed: Array<{ from: string; to: string }>; skipped: Skipped[] }> {
    const { candidates, skipped } =
      'ids' in which
        ? await this.failedOf(visibleTenant(principal), which.ids)
        : { candidates: (await this.scan(principal, which.queue, which.errorContains, which.limit)).jobs, skipped: [] as Skipped[] };
    const replayed: Array<{ from: string; to: string }> = [];
    const already = await this.replayedAs(candidates.map((c) => c.id));
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

  /** Of the jobs `ids`, the dead letters `tenant` may see, and why each other one is skipped. */
  private async failedOf(tenant: string | undefined, ids: string[]): Promise<{ candidates: JobView[]; skipped: Skipped[] }> {
    const candidates: JobView[] = [];
    const skipped: Skipped[] = [];
    for (const id of ids) {
      const v = await this.store.get(id, tenant);
      if (!v) skipped.push({ id, reason: 'no such job' });
      else if (v.state !== 'failed') skipped.push({ id, reason: `it is ${v.state}, not failed` });
      else candidates.push(v);
    }
    return { candidates, skipped };
  }

  async remove(principal: Principal, id: string): Promise<void> {
    const tenant = visibleTenant(principal);
    const v = foundJob(id, await this.store.get(id, tenant));
    if (v.state !== 'failed') throw jobError(id, { status: 'not-dead-letter', state: v.state });
    const out = await this.store.remove(id, tenant);
    if (out.status === 'missing') throw jobError(id, out);
    await this.redis.del(this.replayedKey(id));
  }
}
