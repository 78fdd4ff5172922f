import type { Redis } from 'ioredis';
import { parseConcurrency } from '../coordination/concurrency-overrides.js';
import { tenantCap } from '../coordination/tenant-slots.js';
import { workerProcesses } from '../coordination/worker-registry.js';
import { JOB_STATES, QUEUE_NAMES, type JobState, type QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { COUNT_TENANT_LUA } from '../redis/lua/job-scripts.js';

/** Index entries a stats call counts at most per tenant and queue. */
const STATS_BUDGET = 20_000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiCountTenant(index: string, qprefix: string, budget: number): Promise<Array<string | number>>;
  }
}

/** A tenant's throttle of job starts (queue:throttle-org): at most `max` starts per `perMs` in each of `queues`. */
export type TenantThrottle = { max: number; perMs: number; queues: QueueName[]; expiresAt: string | null; started: Partial<Record<QueueName, number>> };

export type TenantLimit = {
  tenant: string;
  default: number;
  override: number | null;
  overrideExpiresAt: string | null;
  effective: Record<QueueName, number>;
  throttle: TenantThrottle | null;
};

/** What PUT /api/tenants/:tenant/throttle sets: `queue` undefined throttles every queue (each counted apart). */
export type ThrottleSetting = { max: number; perMs: number; ttlSeconds: number; queue?: QueueName };

/**
 * The API side of fair scheduling (the worker side is TenantSlots): per-tenant
 * limits (temporary overrides of TENANT_MAX_ACTIVE) and per-tenant counts.
 */
export class TenantAdmin {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaultCap: number,
    private readonly share: number,
    private readonly concurrency: Readonly<Record<QueueName, number>>,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiCountTenant', { numberOfKeys: 2, lua: COUNT_TENANT_LUA });
  }

  /**
   * The tenant's cap per queue, as the workers apply it (tenantCap, with the
   * queue's live concurrency: QUEUE_CONCURRENCY or worker:scale's), and its
   * throttle. `processes`: the worker processes online, when the caller already counted them.
   */
  async limit(tenant: string, processes?: number): Promise<TenantLimit> {
    const now = Date.now();
    // The override and the throttle have a copy per queue (each on its queue's node under Redis Cluster), written
    // together; one transaction per queue reads them with the queue's concurrency and the tenant's starts there.
    const perQueue = await Promise.all(
      QUEUE_NAMES.map(async (q) => {
        const limit = this.keys.tenantLimit(q, tenant);
        const throttle = this.keys.tenantThrottle(q, tenant);
        const rows = (await this.redis.multi().get(limit).pttl(limit).get(this.keys.queueConcurrency(q)).get(throttle).pttl(throttle).exec()) ?? [];
        const [raw, ttl, concurrency, throttleRaw, throttleTtl] = rows.map(([err, v]) => {
          if (err) throw err;
          return v;
        }) as [string | null, number, string | null, string | null, number];
        const m = /^(\d+):(\d+)$/.exec(throttleRaw ?? '');
        const setting = m ? { max: Number(m[1]), perMs: Number(m[2]), ttl: throttleTtl } : null;
        // The starts the throttle counts now: those of its last perMs.
        const started = setting ? await this.redis.zcount(this.keys.tenantStarts(q, tenant), `(${now - setting.perMs}`, '+inf') : 0;
        return { q, raw, ttl, concurrency: parseConcurrency(concurrency) ?? this.concurrency[q], setting, started };
      }),
    );
    const { raw, ttl } = perQueue.find((c) => c.raw !== null) ?? { raw: null, ttl: -2 };
    const override = raw === null ? null : Number(raw);
    const online = processes ?? (await workerProcesses(this.redis, this.prefix));
    const effective = Object.fromEntries(perQueue.map((c) => [c.q, tenantCap(this.defaultCap, override, c.concurrency, online, this.share)])) as Record<QueueName, number>;
    const throttled = perQueue.filter((c) => c.setting !== null);
    const first = throttled[0]?.setting;
    const throttle: TenantThrottle | null = first
      ? {
          max: first.max,
          perMs: first.perMs,
          queues: throttled.map((c) => c.q),
          expiresAt: first.ttl > 0 ? new Date(now + first.ttl).toISOString() : null,
          started: Object.fromEntries(throttled.map((c) => [c.q, c.started])),
        }
      : null;
    return { tenant, default: this.defaultCap, override, overrideExpiresAt: override !== null && ttl > 0 ? new Date(now + ttl).toISOString() : null, effective, throttle };
  }

  async setLimit(tenant: string, maxActive: number, ttlSeconds: number): Promise<TenantLimit> {
    await Promise.all(QUEUE_NAMES.map((q) => this.redis.set(this.keys.tenantLimit(q, tenant), String(maxActive), 'EX', ttlSeconds)));
    return this.limit(tenant);
  }

  async resetLimit(tenant: string): Promise<TenantLimit> {
    await Promise.all(QUEUE_NAMES.map((q) => this.redis.del(this.keys.tenantLimit(q, tenant))));
    return this.limit(tenant);
  }

  /**
   * Throttle a tenant's job starts for ttlSeconds: at most `max` per `perMs`
   * in the queue, or in each queue (counted apart) when none is named. It
   * replaces the tenant's throttle: the queues not named lose theirs.
   */
  async setThrottle(tenant: string, t: ThrottleSetting): Promise<TenantLimit> {
    await Promise.all(
      QUEUE_NAMES.map((q) => {
        const key = this.keys.tenantThrottle(q, tenant);
        return t.queue === undefined || t.queue === q ? this.redis.set(key, `${t.max}:${t.perMs}`, 'EX', t.ttlSeconds) : this.redis.del(key);
      }),
    );
    return this.limit(tenant);
  }

  /** No throttle any more (jobs it already sent back to wait run when their wait ends, at the latest one interval later). */
  async resetThrottle(tenant: string): Promise<TenantLimit> {
    await Promise.all(QUEUE_NAMES.map((q) => this.redis.del(this.keys.tenantThrottle(q, tenant))));
    return this.limit(tenant);
  }

  /**
   * Jobs running now per queue and tenant, read from the tenants' fair-share
   * slots (a slot is held for each running job, and expires when its process
   * dies); only tenants with any, so that it stays as small as the work running.
   */
  async activeByTenant(now = Date.now()): Promise<Array<{ queue: QueueName; tenant: string; active: number }>> {
    const perQueue = await Promise.all(
      QUEUE_NAMES.map(async (queue) => {
        const tenants = await this.redis.smembers(this.keys.index.tenants(queue));
        if (tenants.length === 0) return [];
        // One round trip per queue: every key is under the queue's hash tag.
        const m = this.redis.pipeline();
        for (const tenant of tenants) m.zcount(this.keys.tenantSlots(queue, tenant), now, '+inf');
        const counts = (await m.exec()) ?? [];
        return tenants.map((tenant, i) => ({ queue, tenant, active: Number(counts[i]?.[1] ?? 0) })).filter((r) => r.active > 0);
      }),
    );
    return perQueue.flat();
  }

  /** Per tenant and queue: jobs in each state (from the tenant's index), and the tenant's limit. */
  async stats(only?: string) {
    const tenants = only ? [only] : [...new Set((await Promise.all(QUEUE_NAMES.map((q) => this.redis.smembers(this.keys.index.tenants(q))))).flat())].sort();
    const processes = await workerProcesses(this.redis, this.prefix);
    return Promise.all(
      tenants.map(async (tenant) => {
        const { queues, truncated } = await this.countJobs(tenant);
        return { tenant, queues, truncated, limit: await this.limit(tenant, processes) };
      }),
    );
  }

  /** The tenant's jobs per queue and state, from the newest STATS_BUDGET entries of its index in each queue. */
  private async countJobs(tenant: string): Promise<{ queues: Record<QueueName, Record<JobState, number>>; truncated: boolean }> {
    const counted = await Promise.all(
      QUEUE_NAMES.map(async (q) => {
        const [truncated, ...pairs] = await this.redis.jobsapiCountTenant(this.keys.index.tenant(q, tenant), this.keys.queue(q), STATS_BUDGET);
        const states = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
        for (let i = 0; i < pairs.length; i += 2) {
          const s = String(pairs[i]) as JobState;
          if (s in states) states[s] += Number(pairs[i + 1]);
        }
        return { q, states, truncated: Number(truncated) === 1 };
      }),
    );
    return {
      queues: Object.fromEntries(counted.map(({ q, states }) => [q, states])) as Record<QueueName, Record<JobState, number>>,
      truncated: counted.some((c) => c.truncated),
    };
  }
}
