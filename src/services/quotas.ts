import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import { QUEUE_NAMES } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { COUNT_QUEUED_LUA } from '../redis/lua/job-scripts.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiCountQueued(queued: string, qprefix: string, prune: 0 | 1): Promise<number>;
  }
}

/** How long this process trusts a tenant's count before asking Redis again. */
const FRESH_MS = 1000;

/**
 * TENANT_MAX_QUEUED: the jobs one tenant may have waiting to start (waiting
 * or delayed, not yet run), so that one tenant's flood cannot fill Redis for
 * everyone. Counted in Redis per queue (keys.ts `index.queued`: enqueues add;
 * fair dispatch handing a job a free slot, starts and removals take away) and trusted for a second in this process,
 * so that an enqueue usually costs no extra round trip; before refusing, the
 * count is made exact (entries of jobs gone or started are dropped).
 */
export class QueuedQuota {
  private readonly keys: RedisKeys;
  /** Each tenant's count as last read (`exact`: by a pruning count, which this process makes at most once per FRESH_MS). */
  private readonly known = new Map<string, { count: number; at: number; exact: boolean }>();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    readonly limit: number,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiCountQueued', { numberOfKeys: 2, lua: COUNT_QUEUED_LUA });
  }

  /** Exact counts on their way, per tenant: requests refused together share one. */
  private readonly counting = new Map<string, Promise<number>>();

  private exactCount(tenant: string): Promise<number> {
    let p = this.counting.get(tenant);
    if (!p) {
      p = this.count(tenant, true).finally(() => this.counting.delete(tenant));
      this.counting.set(tenant, p);
    }
    return p;
  }

  private async count(tenant: string, prune: boolean): Promise<number> {
    const counts = await Promise.all(QUEUE_NAMES.map((q) => this.redis.jobsapiCountQueued(this.keys.index.queued(q, tenant), this.keys.queue(q), prune ? 1 : 0)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Forget the counts this process holds (a job was removed through it: the next enqueue reads them again). */
  forget(): void {
    this.known.clear();
  }

  /** Room for `adding` more jobs of each tenant, or a 429 QUOTA_EXCEEDED naming the limit; all or none. */
  async admit(adding: ReadonlyMap<string, number>): Promise<void> {
    const now = Date.now();
    const counted = new Map<string, number>();
    for (const [tenant, n] of adding) {
      const cached = this.known.get(tenant);
      const fresh = cached && now - cached.at < FRESH_MS ? cached : undefined;
      let count = fresh ? fresh.count : await this.count(tenant, false);
      // Made exact before refusing, but once a second at most: a tenant that keeps knocking at its limit must not
      // make Redis walk its whole queued set on every request.
      if (count + n > this.limit && !fresh?.exact) count = await this.exactCount(tenant);
      if (count + n > this.limit) {
        this.known.set(tenant, { count, at: fresh?.exact ? fresh.at : now, exact: true });
        throw new AppError(
          429,
          'QUOTA_EXCEEDED',
          `Tenant "${tenant}" has ${count} jobs waiting to start${n > 1 ? ` and asks for ${n} more` : ''}; at most ${this.limit} may wait (TENANT_MAX_QUEUED). Let some run, or remove some, then try again.`,
          { 'retry-after': '5' },
        );
      }
      counted.set(tenant, count);
    }
    for (const [tenant, n] of adding) {
      if (this.known.size >= 10_000) this.known.clear();
      this.known.set(tenant, { count: counted.get(tenant)! + n, at: now, exact: false });
    }
  }
}
