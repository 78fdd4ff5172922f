import type { Redis } from 'ioredis';
import { COUNT_TENANT_LUA } from '../redis/lua/job-scripts.js';
import { indexKeys } from '../store/job-store.js';
import { JOB_STATES, QUEUES, QUEUE_NAMES, type JobState, type QueueName } from '../jobs/index.js';

/** A slot lives this long unless its job's process renews it: a crashed process holds it at most this long. */
const SLOT_TTL_MS = 30_000;
const RENEW_EVERY_MS = SLOT_TTL_MS / 3;
/** How long the number of worker processes (hence a queue's capacity) is remembered. */
const CAPACITY_CACHE_MS = 5000;
/** Tenants a stats call counts at most, and index entries per tenant. */
const STATS_BUDGET = 20_000;

/**
 * Take a slot for the job when its tenant holds fewer than its cap in this
 * queue: drop slots whose holder stopped renewing them, keep the job's own
 * (a run again after a crash), then ZADD.
 * KEYS[1] the tenant's slots in the queue (job id -> expiry), KEYS[2] the tenant's override.
 * ARGV[1] job id, ARGV[2] now, ARGV[3] expiry, ARGV[4] default cap, ARGV[5] half of the queue's capacity.
 * Returns { 1 (taken) or 0, cap, active }.
 */
const ACQUIRE_SLOT_LUA = `
local now, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
local override = tonumber(redis.call('GET', KEYS[2]) or '')
if override then cap = override end
cap = math.max(1, math.min(cap, tonumber(ARGV[5])))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local active = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or active < cap then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ${SLOT_TTL_MS * 2})
  return { 1, cap, redis.call('ZCARD', KEYS[1]) }
end
return { 0, cap, active }`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiAcquireSlot(slots: string, override: string, jobId: string, now: number, expiry: number, cap: number, half: number): Promise<[number, number, number]>;
    jobsapiCountTenant(index: string, prefix: string, budget: number): Promise<Array<string | number>>;
  }
}

function slotsKey(prefix: string, queue: QueueName, tenant: string): string {
  return `${prefix}:jobsapi:slots:${queue}:${tenant}`;
}
function overrideKey(prefix: string, tenant: string): string {
  return `${prefix}:jobsapi:tenant-limit:${tenant}`;
}
function workerRegistry(prefix: string): string {
  return `${prefix}:jobsapi:workers`;
}

/** Worker processes that reported in the last 30 s (see WorkerReporter). */
async function workerProcesses(redis: Redis, prefix: string, now = Date.now()): Promise<number> {
  return redis.zcount(workerRegistry(prefix), now - 30_000, '+inf');
}

/** A tenant's share of a queue's capacity (its workers' total concurrency), at least 1. */
export function capacityShare(queue: QueueName, processes: number, share: number): number {
  return Math.max(1, Math.floor(Math.max(1, processes) * QUEUES[queue].concurrency * share));
}

export type SlotOutcome = { held: { release(): void } } | { cap: number; active: number };

/**
 * Fair scheduling between tenants: a job runs only while its tenant has
 * fewer than its cap of active jobs in the queue — TENANT_MAX_ACTIVE (or a
 * temporary override), and never more than TENANT_MAX_SHARE (half) of the
 * queue's capacity. A
 * job over the cap goes back to `delayed` and tries again (it neither fails
 * nor is lost); the flood of one tenant cannot take every worker.
 */
export class TenantSlots {
  private processes = { value: 1, at: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaultCap: number,
    private readonly share = 0.5,
  ) {
    redis.defineCommand('jobsapiAcquireSlot', { numberOfKeys: 2, lua: ACQUIRE_SLOT_LUA });
  }

  private async shareOfCapacity(queue: QueueName): Promise<number> {
    const now = Date.now();
    if (now - this.processes.at > CAPACITY_CACHE_MS) {
      this.processes = { value: await workerProcesses(this.redis, this.prefix, now), at: now };
    }
    return capacityShare(queue, this.processes.value, this.share);
  }

  async acquire(queue: QueueName, tenant: string, jobId: string): Promise<SlotOutcome> {
    const key = slotsKey(this.prefix, queue, tenant);
    const now = Date.now();
    const [taken, cap, active] = await this.redis.jobsapiAcquireSlot(
      key,
      overrideKey(this.prefix, tenant),
      jobId,
      now,
      now + SLOT_TTL_MS,
      this.defaultCap,
      await this.shareOfCapacity(queue),
    );
    if (taken !== 1) return { cap, active };
    const timer = setInterval(() => {
      this.redis.zadd(key, 'XX', Date.now() + SLOT_TTL_MS, jobId).catch(() => {});
    }, RENEW_EVERY_MS);
    timer.unref();
    return {
      held: {
        release: () => {
          clearInterval(timer);
          this.redis.zrem(key, jobId).catch(() => {});
        },
      },
    };
  }
}

export type TenantLimit = { tenant: string; default: number; override: number | null; overrideExpiresAt: string | null; effective: Record<QueueName, number> };

/** The API side: per-tenant limits (temporary overrides) and per-tenant counts. */
export class TenantAdmin {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaultCap: number,
    private readonly share = 0.5,
  ) {
    redis.defineCommand('jobsapiCountTenant', { numberOfKeys: 1, lua: COUNT_TENANT_LUA });
  }

  /** `processes`: the worker processes online, when the caller already counted them. */
  async limit(tenant: string, processes?: number): Promise<TenantLimit> {
    const [[, raw], [, ttl]] = (await this.redis.multi().get(overrideKey(this.prefix, tenant)).pttl(overrideKey(this.prefix, tenant)).exec()) as [
      [Error | null, string | null],
      [Error | null, number],
    ];
    const override = raw === null ? null : Number(raw);
    const online = processes ?? (await workerProcesses(this.redis, this.prefix));
    const effective = Object.fromEntries(QUEUE_NAMES.map((q) => [q, Math.max(1, Math.min(override ?? this.defaultCap, capacityShare(q, online, this.share)))])) as Record<QueueName, number>;
    return { tenant, default: this.defaultCap, override, overrideExpiresAt: override !== null && ttl > 0 ? new Date(Date.now() + ttl).toISOString() : null, effective };
  }

  async setLimit(tenant: string, maxActive: number, ttlSeconds: number): Promise<TenantLimit> {
    await this.redis.set(overrideKey(this.prefix, tenant), String(maxActive), 'EX', ttlSeconds);
    return this.limit(tenant);
  }

  async resetLimit(tenant: string): Promise<TenantLimit> {
    await this.redis.del(overrideKey(this.prefix, tenant));
    return this.limit(tenant);
  }

  /** Per tenant and queue: jobs in each state (from the tenant's index), and the tenant's limit. */
  async stats(only?: string) {
    const tenants = only ? [only] : (await this.redis.smembers(indexKeys(this.prefix).tenants)).sort();
    const processes = await workerProcesses(this.redis, this.prefix);
    return Promise.all(
      tenants.map(async (tenant) => {
        const [truncated, ...pairs] = await this.redis.jobsapiCountTenant(indexKeys(this.prefix).tenantPrefix + tenant, this.prefix, STATS_BUDGET);
        const queues = Object.fromEntries(
          QUEUE_NAMES.map((q) => [q, Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>]),
        ) as Record<QueueName, Record<JobState, number>>;
        for (let i = 0; i < pairs.length; i += 2) {
          const [q, s] = String(pairs[i]).split(':') as [QueueName, JobState];
          if (queues[q] && s in queues[q]) queues[q][s] += Number(pairs[i + 1]);
        }
        return { tenant, queues, truncated: Number(truncated) === 1, limit: await this.limit(tenant, processes) };
      }),
    );
  }
}
