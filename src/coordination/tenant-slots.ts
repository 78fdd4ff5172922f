import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { acquireGlobalSlotLua, acquireSlotLua } from '../redis/lua/tenant-slots.js';
import { workerProcesses } from './worker-registry.js';

/** A slot lives this long unless its job's process renews it: a crashed process holds it at most this long. */
const SLOT_TTL_MS = 30_000;
const RENEW_EVERY_MS = SLOT_TTL_MS / 3;
/** How long the number of worker processes (hence a queue's capacity) is remembered. */
const CAPACITY_CACHE_MS = 5000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiAcquireSlot(
      slots: string,
      override: string,
      queued: string,
      throttle: string,
      starts: string,
      jobId: string,
      now: number,
      expiry: number,
      cap: number,
      share: number,
      capacity: number,
      start: string,
    ): Promise<[number, number, number, number?]>;
    jobsapiAcquireGlobalSlot(slots: string, jobId: string, now: number, expiry: number, cap: number): Promise<[number, number]>;
  }
}

/** A queue's capacity: its worker processes (at least the one asking) × each one's concurrency. */
export function queueCapacity(concurrency: number, processes: number): number {
  return Math.max(1, processes) * concurrency;
}

/** A tenant's share of a queue's capacity (its worker processes × each one's concurrency), at least 1. */
export function capacityShare(concurrency: number, processes: number, share: number): number {
  return Math.max(1, Math.floor(queueCapacity(concurrency, processes) * share));
}

/**
 * A tenant's cap of active jobs in a queue: TENANT_MAX_ACTIVE within its share
 * of the queue's capacity (TENANT_MAX_SHARE); with an override (an operator's
 * explicit decision), the override within the whole capacity. At least 1.
 * The slot script (src/redis/lua/tenant-slots.ts) applies the same rule.
 */
export function tenantCap(defaultCap: number, override: number | null, concurrency: number, processes: number, share: number): number {
  const cap = override === null ? Math.min(defaultCap, capacityShare(concurrency, processes, share)) : Math.min(override, queueCapacity(concurrency, processes));
  return Math.max(1, cap);
}

/** A slot the job holds until it ends: `release` when it ran, `giveBack` when it did not start after all (its start does not count). */
export type HeldSlot = { release(): void; giveBack(): void };

export type SlotOutcome = { held: HeldSlot } | { cap: number; active: number } | { throttled: { max: number; perMs: number; freeAt: number } };

/** The concurrency of each queue in this process now: QUEUE_CONCURRENCY, or what worker:scale set since. */
export type ConcurrencyOf = Readonly<Record<QueueName, number>> | ((queue: QueueName) => number);

/**
 * Fair scheduling between tenants: a job runs only while its tenant has
 * fewer than its cap of active jobs in the queue — TENANT_MAX_ACTIVE, never
 * more than TENANT_MAX_SHARE (half) of the queue's capacity, or a temporary
 * override within the whole capacity — and, while the tenant is throttled in
 * the queue (queue:throttle-org), has started fewer than the throttle's `max`
 * jobs in its last `perMs`. A job over either goes back to `delayed` and tries
 * again (it neither fails nor is lost); the flood of one tenant cannot take
 * every worker.
 */
export class TenantSlots {
  private processes = { value: 1, at: 0 };
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaultCap: number,
    private readonly share: number,
    /** Each worker process's concurrency per queue (every process is expected to run the same): the live value when a function. */
    private readonly concurrency: ConcurrencyOf,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiAcquireSlot', { numberOfKeys: 5, lua: acquireSlotLua(SLOT_TTL_MS * 2) });
  }

  private async liveProcesses(): Promise<number> {
    const now = Date.now();
    if (now - this.processes.at > CAPACITY_CACHE_MS) {
      this.processes = { value: await workerProcesses(this.redis, this.prefix, now), at: now };
    }
    return this.processes.value;
  }

  async acquire(queue: QueueName, tenant: string, jobId: string): Promise<SlotOutcome> {
    const key = this.keys.tenantSlots(queue, tenant);
    const starts = this.keys.tenantStarts(queue, tenant);
    const concurrency = typeof this.concurrency === 'function' ? this.concurrency(queue) : this.concurrency[queue];
    const processes = await this.liveProcesses();
    const now = Date.now();
    const start = `${jobId}:${now}`;
    const [taken, a, b, c] = await this.redis.jobsapiAcquireSlot(
      key,
      this.keys.tenantLimit(queue, tenant),
      this.keys.index.queued(queue, tenant),
      this.keys.tenantThrottle(queue, tenant),
      starts,
      jobId,
      now,
      now + SLOT_TTL_MS,
      this.defaultCap,
      capacityShare(concurrency, processes, this.share),
      queueCapacity(concurrency, processes),
      start,
    );
    if (taken === 2) return { throttled: { max: a, perMs: b, freeAt: c ?? now + b } };
    if (taken !== 1) return { cap: a, active: b };
    const timer = renewing(this.redis, key, jobId);
    return {
      held: {
        release: () => {
          clearInterval(timer);
          this.redis.zrem(key, jobId).catch(() => {});
        },
        giveBack: () => {
          clearInterval(timer);
          this.redis.multi().zrem(key, jobId).zrem(starts, start).exec().catch(() => {});
        },
      },
    };
  }
}

/** Keep the job's slot alive while it runs (every RENEW_EVERY_MS, while the slot is still there). */
function renewing(redis: Redis, key: string, jobId: string): NodeJS.Timeout {
  const timer = setInterval(() => {
    redis.zadd(key, 'XX', Date.now() + SLOT_TTL_MS, jobId).catch(() => {});
  }, RENEW_EVERY_MS);
  timer.unref();
  return timer;
}

/**
 * GLOBAL_MAX_ACTIVE: at most that many jobs active at once, over every queue
 * and worker process. A job takes one of these slots after its tenant's and
 * gives it back with it; a job over the cap goes back to `delayed`, like one
 * over its tenant's cap. One key under the `{jobsapi}` tag, taken by its own
 * script (never together with a queue's keys, which live on other nodes of a
 * Cluster).
 */
export class GlobalSlots {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    readonly cap: number,
  ) {
    this.key = redisKeys(prefix).globalSlots;
    redis.defineCommand('jobsapiAcquireGlobalSlot', { numberOfKeys: 1, lua: acquireGlobalSlotLua(SLOT_TTL_MS * 2) });
  }

  async acquire(jobId: string): Promise<{ held: { release(): void } } | { cap: number; active: number }> {
    const now = Date.now();
    const [taken, active] = await this.redis.jobsapiAcquireGlobalSlot(this.key, jobId, now, now + SLOT_TTL_MS, this.cap);
    if (taken !== 1) return { cap: this.cap, active };
    const timer = renewing(this.redis, this.key, jobId);
    return {
      held: {
        release: () => {
          clearInterval(timer);
          this.redis.zrem(this.key, jobId).catch(() => {});
        },
      },
    };
  }
}
