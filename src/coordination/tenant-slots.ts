import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { acquireSlotLua } from '../redis/lua/tenant-slots.js';
import { workerProcesses } from './worker-registry.js';

/** A slot lives this long unless its job's process renews it: a crashed process holds it at most this long. */
const SLOT_TTL_MS = 30_000;
const RENEW_EVERY_MS = SLOT_TTL_MS / 3;
/** How long the number of worker processes (hence a queue's capacity) is remembered. */
const CAPACITY_CACHE_MS = 5000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiAcquireSlot(slots: string, override: string, queued: string, jobId: string, now: number, expiry: number, cap: number, half: number): Promise<[number, number, number]>;
  }
}

/** A tenant's share of a queue's capacity (its worker processes × each one's concurrency), at least 1. */
export function capacityShare(concurrency: number, processes: number, share: number): number {
  return Math.max(1, Math.floor(Math.max(1, processes) * concurrency * share));
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
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaultCap: number,
    private readonly share: number,
    /** Each worker process's concurrency per queue (QUEUE_CONCURRENCY: every process is expected to run the same). */
    private readonly concurrency: Readonly<Record<QueueName, number>>,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiAcquireSlot', { numberOfKeys: 3, lua: acquireSlotLua(SLOT_TTL_MS * 2) });
  }

  private async shareOfCapacity(queue: QueueName): Promise<number> {
    const now = Date.now();
    if (now - this.processes.at > CAPACITY_CACHE_MS) {
      this.processes = { value: await workerProcesses(this.redis, this.prefix, now), at: now };
    }
    return capacityShare(this.concurrency[queue], this.processes.value, this.share);
  }

  async acquire(queue: QueueName, tenant: string, jobId: string): Promise<SlotOutcome> {
    const key = this.keys.tenantSlots(queue, tenant);
    const now = Date.now();
    const [taken, cap, active] = await this.redis.jobsapiAcquireSlot(
      key,
      this.keys.tenantLimit(queue, tenant),
      this.keys.index.queued(queue, tenant),
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
