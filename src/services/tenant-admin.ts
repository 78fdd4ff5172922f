import type { Redis } from 'ioredis';
import { capacityShare } from '../coordination/tenant-slots.js';
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

export type TenantLimit = { tenant: string; default: number; override: number | null; overrideExpiresAt: string | null; effective: Record<QueueName, number> };

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

  /** `processes`: the worker processes online, when the caller already counted them. */
  async limit(tenant: string, processes?: number): Promise<TenantLimit> {
    // The override has a copy per queue (each on its queue's node under Redis Cluster), written together.
    const copies = await Promise.all(
      QUEUE_NAMES.map(async (q) => {
        const key = this.keys.tenantLimit(q, tenant);
        const [[, raw], [, ttl]] = (await this.redis.multi().get(key).pttl(key).exec()) as [[Error | null, string | null], [Error | null, number]];
        return { raw, ttl };
      }),
    );
    const { raw, ttl } = copies.find((c) => c.raw !== null) ?? { raw: null, ttl: -2 };
    const override = raw === null ? null : Number(raw);
    const online = processes ?? (await workerProcesses(this.redis, this.prefix));
    const effective = Object.fromEntries(QUEUE_NAMES.map((q) => [q, Math.max(1, Math.min(override ?? this.defaultCap, capacityShare(this.concurrency[q], online, this.share)))])) as Record<QueueName, number>;
    return { tenant, default: this.defaultCap, override, overrideExpiresAt: override !== null && ttl > 0 ? new Date(Date.now() + ttl).toISOString() : null, effective };
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
