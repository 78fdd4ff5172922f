import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { acquireGlobalSlotLua, acquireSlotLua } from '../redis/lua/tenant-slots.js';
import { START_DISPATCHED_LUA } from '../redis/lua/fair-dispatch.js';
import { capacityShare, FairDispatch, queueCapacity, SLOT_SET_TTL_MS, type ConcurrencySource } from './fair-dispatch.js';

export { capacityShare, queueCapacity };

/** A slot lives this long unless its job's process renews it: a crashed process holds it at most this long. */
const SLOT_TTL_MS = 30_000;
const RENEW_EVERY_MS = SLOT_TTL_MS / 3;
/**
 * A job this process dispatched when one of its jobs ended, and then took, within this long: its slot is known to
 * be reserved (a reservation lasts READY_TTL_MS and is dropped only once its job is neither ready nor running).
 * Taken later (it went back to wait in between: an operator's delay), it asks, as any other job does.
 */
const TRUST_DISPATCH_MS = 2000;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiAcquireSlot(
      slots: string,
      override: string,
      queued: string,
      throttle: string,
      starts: string,
      queuePrefix: string,
      lane: string,
      parked: string,
      ring: string,
      turn: string,
      tenantJobs: string,
      jobId: string,
      now: number,
      expiry: number,
      cap: number,
      share: number,
      capacity: number,
      start: string,
      tenant: string,
      priority: number | '',
      order: number | '',
    ): Promise<[number, number, number, number?]>;
    jobsapiStartDispatched(slots: string, queued: string, expiry: number, jobId: string): Promise<number>;
    jobsapiAcquireGlobalSlot(slots: string, jobId: string, now: number, expiry: number, cap: number): Promise<[number, number]>;
  }
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

export type SlotOutcome = { held: HeldSlot } | { cap: number; active: number } | { throttled: { max: number; perMs: number; freeAt: number } } | { behind: number };

/** The concurrency of each queue in this process now: QUEUE_CONCURRENCY, or what worker:scale set since. */
export type ConcurrencyOf = Readonly<Record<QueueName, number>> | ((queue: QueueName) => number);

/**
 * Fair scheduling between tenants: a job runs only while its tenant has
 * fewer than its cap of active jobs in the queue — TENANT_MAX_ACTIVE, never
 * more than TENANT_MAX_SHARE (half) of the queue's capacity, or a temporary
 * override within the whole capacity — and, while the tenant is throttled in
 * the queue (queue:throttle-org), has started fewer than the throttle's `max`
 * jobs in its last `perMs`.
 *
 * Which job starts is decided at dispatch (FairDispatch): a job the API
 * admitted ready, or that a freed slot dispatched, comes with its slot
 * reserved, and starting it costs one small script (two writes), or nothing when the end of a job in this
 * process dispatched it a moment before (the release answers what it dispatched). A job that did not come that
 * way (a retry, a delayed job, a schedule's run, one a worker took before
 * the API admitted it) takes its slot here when it starts; over either limit
 * it goes back to wait parked for its tenant's turn (workers/run-job.ts; a
 * job without a priority goes to `delayed` and tries again): it neither fails
 * nor is lost.
 */
export class TenantSlots {
  private readonly keys: RedisKeys;
  /** Dispatch by turn: every slot this process frees goes to the next tenant with parked jobs. */
  readonly fair: FairDispatch;
  /** Job id -> when this process's release dispatched it (a start within TRUST_DISPATCH_MS asks Redis nothing). */
  private readonly dispatchedHere = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly defaultCap: number,
    private readonly share: number,
    /** Each worker process's concurrency per queue (every process is expected to run the same): the live value when a function. */
    concurrency: ConcurrencyOf,
  ) {
    this.keys = redisKeys(prefix);
    const concurrencyOf: ConcurrencySource = typeof concurrency === 'function' ? concurrency : (queue) => concurrency[queue];
    this.fair = new FairDispatch(redis, prefix, defaultCap, share, concurrencyOf);
    redis.defineCommand('jobsapiStartDispatched', { numberOfKeys: 2, lua: START_DISPATCHED_LUA });
    redis.defineCommand('jobsapiAcquireSlot', { numberOfKeys: 11, lua: acquireSlotLua(SLOT_SET_TTL_MS) });
  }

  /**
   * The slot of a job about to start. `place`: its priority and order of arrival (laneOrder), when known: at its
   * tenant's cap, it may then take the slot of a later job of its tenant reserved ready and not started.
   */
  async acquire(queue: QueueName, tenant: string, jobId: string, place?: { priority: number; order: number }): Promise<SlotOutcome> {
    const key = this.keys.tenantSlots(queue, tenant);
    const now = Date.now();
    const starts = this.keys.tenantStarts(queue, tenant);
    const dispatchedAt = this.dispatchedHere.get(jobId);
    if (dispatchedAt !== undefined) {
      this.dispatchedHere.delete(jobId);
      // This process's own end-of-job call dispatched it a moment ago: its slot is reserved, nothing to ask. (The
      // renewals give the slot a running job's expiry; until the first, it keeps the reservation's.)
      if (now - dispatchedAt < TRUST_DISPATCH_MS) return { held: this.holding(queue, tenant, key, jobId, { starts, start: `${jobId}:dispatch` }) };
    }
    // Dispatched: its slot was reserved when it was made ready; it becomes the running job's (renewed from now on).
    if ((await this.redis.jobsapiStartDispatched(key, this.keys.index.queued(queue, tenant), now + SLOT_TTL_MS, jobId)) === 1) {
      // Its throttled start, if any, was counted at dispatch under this member (src/redis/lua/fair-dispatch.ts).
      return { held: this.holding(queue, tenant, key, jobId, { starts, start: `${jobId}:dispatch` }) };
    }
    const { concurrency, processes } = await this.fair.capacity(queue);
    const start = `${jobId}:${now}`;
    const [taken, a, b, c] = await this.redis.jobsapiAcquireSlot(
      key,
      this.keys.tenantLimit(queue, tenant),
      this.keys.index.queued(queue, tenant),
      this.keys.tenantThrottle(queue, tenant),
      starts,
      this.keys.queue(queue),
      this.keys.fair(queue).lane(tenant),
      this.keys.fair(queue).parked,
      this.keys.fair(queue).ring,
      this.keys.fair(queue).turn,
      this.keys.index.tenant(queue, tenant),
      jobId,
      now,
      now + SLOT_TTL_MS,
      this.defaultCap,
      capacityShare(concurrency, processes, this.share),
      queueCapacity(concurrency, processes),
      start,
      tenant,
      place?.priority ?? '',
      place?.order ?? '',
    );
    if (taken === 2) return { throttled: { max: a, perMs: b, freeAt: c ?? now + b } };
    if (taken === 3) return { behind: a };
    if (taken !== 1) return { cap: a, active: b };
    return { held: this.holding(queue, tenant, key, jobId, { starts, start }) };
  }

  /** Jobs this process's end-of-job calls just dispatched: a worker of this process usually takes them next. */
  private dispatched(ids: string[]): void {
    const now = Date.now();
    if (this.dispatchedHere.size >= 10_000) {
      // Taken by other processes (or removed): forget the old ones.
      for (const [id, at] of this.dispatchedHere) if (now - at >= TRUST_DISPATCH_MS) this.dispatchedHere.delete(id); else break;
    }
    for (const id of ids) this.dispatchedHere.set(id, now);
  }

  /** The slot while the job runs: renewed; freed at its end, which dispatches the next tenant's job. */
  private holding(queue: QueueName, tenant: string, key: string, jobId: string, counted?: { starts: string; start: string }): HeldSlot {
    const timer = renewing(this.redis, key, jobId);
    const end = (uncount: boolean) => {
      clearInterval(timer);
      // A start that did not happen after all does not count against a throttle.
      if (uncount && counted) this.redis.zrem(counted.starts, counted.start).catch(() => {});
      this.fair.release(queue, tenant, jobId).then((ids) => this.dispatched(ids), () => {});
    };
    return { release: () => end(false), giveBack: () => end(true) };
  }
}

/** Keep the job's slot alive while it runs (every RENEW_EVERY_MS, while the slot is still there), and the set with it. */
function renewing(redis: Redis, key: string, jobId: string): NodeJS.Timeout {
  const timer = setInterval(() => {
    redis.pipeline().zadd(key, 'XX', Date.now() + SLOT_TTL_MS, jobId).pexpire(key, SLOT_SET_TTL_MS).exec().catch(() => {});
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
    redis.defineCommand('jobsapiAcquireGlobalSlot', { numberOfKeys: 1, lua: acquireGlobalSlotLua(SLOT_SET_TTL_MS) });
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
