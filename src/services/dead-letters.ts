import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import type { JobService } from './jobs.js';
import { foundJob, jobError, jobPage } from './outcomes.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import type { JobStore, JobView } from '../store/job-store.js';
import type { DeadGroup } from '../store/dead-letter-index.js';
import { errorType, QUEUE_NAMES, type JobData, type QueueName } from '../jobs/index.js';
import { visibleTenant, type Principal } from '../tenant.js';

/** How many dead letters a replay by `errorContains` looks at, newest first (by `errorType` it reads only those it replays). */
export const DEAD_LETTER_SCAN = 10_000;
const REPLAYED_TTL_SECONDS = 8 * 24 * 3600;

export type DeadLetter = JobView & { errorType: string; replayedAs: string | null };
type Skipped = { id: string; reason: string };

export { errorType };

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
    filter: { queue?: QueueName; errorContains?: string; errorType?: string; limit: number; cursor?: string },
  ): Promise<{ jobs: DeadLetter[]; nextCursor: string | null }> {
    await this.countNewFailures(principal, filter.queue);
    const page = jobPage(
      await this.store.list({ tenant: visibleTenant(principal), state: 'failed', deadLetters: { errorType: filter.errorType }, queue: filter.queue, limit: filter.limit, cursor: filter.cursor }),
    );
    const needle = filter.errorContains?.toLowerCase();
    const jobs = needle ? page.jobs.filter((j) => (j.failedReason ?? '').toLowerCase().includes(needle)) : page.jobs;
    return { jobs: await this.decorate(jobs), nextCursor: page.nextCursor };
  }

  /**
   * The dead-letter aggregate counts failures when it is read: bring it up to
   * date for the queues a listing walks (a grouping does it on its own).
   */
  private async countNewFailures(principal: Principal, queue?: QueueName): Promise<void> {
    await Promise.all((queue ? [queue] : QUEUE_NAMES).map((q) => this.store.dead.groups(q, visibleTenant(principal))));
  }

  /** Up to `max` dead letters visible to `principal`, newest first: those of one error type, or (at most DEAD_LETTER_SCAN looked at) those whose reason contains a text. */
  private async scan(principal: Principal, filter: { queue?: QueueName; errorContains?: string; errorType?: string }, max: number): Promise<{ jobs: JobView[]; truncated: boolean }> {
    await this.countNewFailures(principal, filter.queue);
    const out: JobView[] = [];
    let cursor: string | undefined;
    let seen = 0;
    const needle = filter.errorContains?.toLowerCase();
    do {
      const page = jobPage(
        await this.store.list({ tenant: visibleTenant(principal), state: 'failed', deadLetters: { errorType: filter.errorType }, queue: filter.queue, limit: Math.min(100, Math.max(max, 1)), cursor }),
      );
      for (const j of page.jobs) {
        seen += 1;
        if (!needle || (j.failedReason ?? '').toLowerCase().includes(needle)) out.push(j);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor && seen < DEAD_LETTER_SCAN && out.length < max);
    return { jobs: out.slice(0, max), truncated: cursor !== undefined };
  }

  /**
   * Dead letters grouped by error type: count, queues, and the newest example.
   * Read from the dead-letter aggregate: the cost is that of the error types
   * (and of the failures since the last grouping), not of the failed jobs.
   */
  async errors(principal: Principal, queue?: QueueName) {
    const tenant = visibleTenant(principal);
    const perQueue = await Promise.all((queue ? [queue] : QUEUE_NAMES).map(async (q) => ({ queue: q, groups: await this.store.dead.groups(q, tenant) })));
    const groups = new Map<string, { errorType: string; count: number; queues: QueueName[]; newest: DeadGroup['newest'] }>();
    for (const { queue: q, groups: gs } of perQueue) {
      for (const g of gs) {
        const known = groups.get(g.errorType);
        if (!known) groups.set(g.errorType, { errorType: g.errorType, count: g.count, queues: [q], newest: g.newest });
        else {
          known.count += g.count;
          known.queues.push(q);
          if ((g.newest.finishedAt ?? '') > (known.newest.finishedAt ?? '')) known.newest = g.newest;
        }
      }
    }
    const sorted = [...groups.values()].sort((a, b) => b.count - a.count || a.errorType.localeCompare(b.errorType));
    return {
      scanned: sorted.reduce((n, g) => n + g.count, 0),
      truncated: false,
      groups: sorted.map((g) => ({ ...g, queues: g.queues.sort() })),
    };
  }

  /**
   * Enqueue each dead letter again as a new job with the same type and data
   * (checked against the inventory as any enqueue is). The dead letter stays
   * (listed with `replayedAs`) until removed; one already replayed is skipped.
   */
  async replay(
    principal: Principal,
    which: { ids: string[] } | { queue?: QueueName; errorContains?: string; errorType?: string; limit: number },
  ): Promise<{ replayed: Array<{ from: string; to: string }>; skipped: Skipped[] }> {
    const { candidates, skipped } =
      'ids' in which
        ? await this.failedOf(visibleTenant(principal), which.ids)
        : { candidates: (await this.scan(principal, which, which.limit)).jobs, skipped: [] as Skipped[] };
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
