import type { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { ADMIT_LUA, PARK_RUNNING_LUA, REFILL_LUA, RELEASE_LUA, SETTLE_PARKED_LUA, UNPARK_ALL_LUA } from '../redis/lua/fair-dispatch.js';
import { workerProcesses } from './worker-registry.js';

/** A slot reserved for a job made ready holds this long unless a worker starts it (then its renewals keep it). */
export const READY_TTL_MS = 5 * 60_000;
/** A tenant's slot set expires this long after its last write: only what nobody uses goes. */
export const SLOT_SET_TTL_MS = 2 * READY_TTL_MS;
/** How long a queue's concurrency read from Redis (worker:scale, the API's side) is remembered. */
const LIMITS_CACHE_MS = 5000;
/**
 * How long the number of worker processes is remembered: a second, as often as they report. A worker's first look
 * comes a second after it starts, often before the others have reported; remembered longer, that count (itself
 * alone) would hold every tenant to one process's share while the others run half idle.
 */
const PROCESSES_CACHE_MS = 1000;
/** How often each worker process looks for parked jobs that free slots now allow (slots expired, throttle windows, removals). */
export const REFILL_EVERY_MS = 1000;

/** A queue's capacity: its worker processes (at least the one asking) × each one's concurrency. */
export function queueCapacity(concurrency: number, processes: number): number {
  return Math.max(1, processes) * concurrency;
}

/** A tenant's share of a queue's capacity (its worker processes × each one's concurrency), at least 1. */
export function capacityShare(concurrency: number, processes: number, share: number): number {
  return Math.max(1, Math.floor(queueCapacity(concurrency, processes) * share));
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiFairAdmit(product: string, queue: string, ...args: Array<string | number>): Promise<number>;
    jobsapiFairRefill(product: string, queue: string, ...args: Array<string | number>): Promise<number>;
    jobsapiFairRelease(product: string, queue: string, ...args: Array<string | number>): Promise<string[]>;
    jobsapiFairUnparkAll(product: string, queue: string): Promise<Array<string | number>>;
    jobsapiFairParkRunning(product: string, queue: string, jobId: string, tenant: string, priority: number, order: number): Promise<number>;
    jobsapiFairSettleParked(product: string, queue: string, jobId: string): Promise<number>;
  }
}

/** The two keys and the common arguments of a dispatch script, and the queue's capacity. */
type Head = { keys: [string, string]; args: number[]; capacity: number };

/** The concurrency of a queue in each worker process now (the API reads worker:scale's override, a worker its own). */
export type ConcurrencySource = (queue: QueueName) => number | Promise<number>;

/**
 * Fair dispatch (src/redis/lua/fair-dispatch.ts): a tenant's new jobs start
 * at once while it is under its cap; the rest wait parked in its lane, and
 * each slot that frees goes to the next tenant in turn that has jobs parked.
 * The API admits new jobs (JobStore); every worker process releases a slot
 * when a job ends (which dispatches the next) and looks every second for
 * slots freed otherwise. Shared by both sides: the scripts take the caps,
 * overrides and throttles from Redis, the capacity from here.
 */
export class FairDispatch {
  private readonly keys: RedisKeys;
  private processes = { value: 1, at: 0 };
  private readonly concurrency = new Map<QueueName, { value: number; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  /** Slots freed in this turn, per queue: tenant, job id, ...; sent together (release). */
  private readonly releasing = new Map<QueueName, { items: string[]; sent: Promise<string[]> }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaultCap: number,
    private readonly share: number,
    private readonly concurrencyOf: ConcurrencySource,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiFairAdmit', { numberOfKeys: 2, lua: ADMIT_LUA });
    redis.defineCommand('jobsapiFairRefill', { numberOfKeys: 2, lua: REFILL_LUA });
    redis.defineCommand('jobsapiFairRelease', { numberOfKeys: 2, lua: RELEASE_LUA });
    redis.defineCommand('jobsapiFairUnparkAll', { numberOfKeys: 2, lua: UNPARK_ALL_LUA });
    redis.defineCommand('jobsapiFairParkRunning', { numberOfKeys: 2, lua: PARK_RUNNING_LUA });
    redis.defineCommand('jobsapiFairSettleParked', { numberOfKeys: 2, lua: SETTLE_PARKED_LUA });
  }

  /** The queue's capacity now: its worker processes (at least one) × each one's concurrency. */
  async capacity(queue: QueueName): Promise<{ concurrency: number; processes: number }> {
    const known = this.capacityKnown(queue);
    if (known) return known;
    const now = Date.now();
    if (now - this.processes.at > PROCESSES_CACHE_MS) {
      this.processes = { value: await workerProcesses(this.redis, this.prefix, now), at: now };
    }
    let c = this.concurrency.get(queue);
    if (!c || now - c.at > LIMITS_CACHE_MS) {
      const source = this.concurrencyOf(queue);
      // A worker's own concurrency is read as it is (worker:scale changes it at once); one read from Redis is remembered a while.
      if (typeof source === 'number') return { concurrency: source, processes: this.processes.value };
      c = { value: await source, at: now };
      this.concurrency.set(queue, c);
    }
    return { concurrency: c.value, processes: this.processes.value };
  }

  /** The capacity when nothing needs to be read for it (what was read is recent), else undefined. */
  private capacityKnown(queue: QueueName): { concurrency: number; processes: number } | undefined {
    const now = Date.now();
    if (now - this.processes.at > PROCESSES_CACHE_MS) return undefined;
    const c = this.concurrency.get(queue);
    if (c && now - c.at <= LIMITS_CACHE_MS) return { concurrency: c.value, processes: this.processes.value };
    const source = this.concurrencyOf(queue);
    return typeof source === 'number' ? { concurrency: source, processes: this.processes.value } : undefined;
  }

  /** The scripts' two keys and common arguments (now, caps, capacity, readyMax, reservation expiry, set TTL), and the capacity. */
  private async head(queue: QueueName): Promise<Head> {
    return this.headOf(queue, await this.capacity(queue));
  }

  private headOf(queue: QueueName, { concurrency, processes }: { concurrency: number; processes: number }): Head {
    const capacity = queueCapacity(concurrency, processes);
    const now = Date.now();
    return {
      keys: [this.keys.fair(queue).product, this.keys.queue(queue)],
      args: [now, this.defaultCap, capacityShare(concurrency, processes, this.share), capacity, capacity, now + READY_TTL_MS, SLOT_SET_TTL_MS],
      capacity,
    };
  }

  /** New jobs (in BullMQ already), with their order of arrival (laneOrder): each stays ready, its tenant's slot reserved, or is parked. Answers how many were parked. */
  async admit(queue: QueueName, jobs: ReadonlyArray<readonly [id: string, tenant: string, order: number]>): Promise<number> {
    let parked = 0;
    // A thousand a call: one script's arguments stay small, and Redis serves others between calls.
    for (let i = 0; i < jobs.length; i += 1000) {
      const { keys, args } = await this.head(queue);
      parked += await this.redis.jobsapiFairAdmit(...keys, ...args, ...jobs.slice(i, i + 1000).flat());
    }
    return parked;
  }

  /** Dispatch the parked jobs that free slots allow now (at most a capacity's worth). */
  async refill(queue: QueueName): Promise<number> {
    const { keys, args, capacity } = await this.head(queue);
    return this.redis.jobsapiFairRefill(...keys, ...args, capacity);
  }

  /**
   * A job's slot frees: the next tenant in turn gets it (and any other slot free now, after a cap or capacity grew).
   * The jobs of this process that end together (in one turn of the event loop, before its next microtask) free
   * their slots in one call, sent before BullMQ's move of these jobs to completed fetches the next ones: those
   * find the jobs this call made ready. Answers the ids of the jobs the call dispatched.
   */
  release(queue: QueueName, tenant: string, jobId: string): Promise<string[]> {
    let batch = this.releasing.get(queue);
    if (!batch) {
      const items: string[] = [];
      // Sent at the next microtask (a promise's, which costs less than queueMicrotask's).
      const sent = Promise.resolve().then(() => {
        this.releasing.delete(queue);
        const known = this.capacityKnown(queue);
        const send = (head: Head) => this.redis.jobsapiFairRelease(...head.keys, ...head.args, head.capacity, ...items);
        return known ? send(this.headOf(queue, known)) : this.head(queue).then(send);
      });
      batch = { items, sent };
      this.releasing.set(queue, batch);
    }
    batch.items.push(tenant, jobId);
    return batch.sent;
  }

  /**
   * An operator's step over the queue's waiting jobs (a drain, a delay, a clean: BullMQ's scripts, which see its
   * own sets only): every parked job is put back among them first, and those the step leaves waiting are
   * admitted again after it.
   */
  async overWaiting<T>(queue: QueueName, step: () => Promise<T>): Promise<T> {
    const flat = await this.redis.jobsapiFairUnparkAll(this.keys.fair(queue).product, this.keys.queue(queue));
    const jobs: Array<[string, string, number]> = [];
    for (let i = 0; i < flat.length; i += 3) jobs.push([String(flat[i]), String(flat[i + 1]), Number(flat[i + 2])]);
    try {
      return await step();
    } finally {
      await this.admit(queue, jobs);
    }
  }

  /**
   * Put back, parked in its tenant's lane, a job a worker took without a slot for it (it came before the API
   * admitted it, or back from a retry or a delay): parked while still active, then \`moveBack\` (BullMQ's
   * moveToWait), then out of BullMQ's waiting jobs unless dispatch gave it its turn meanwhile.
   */
  async putBack(queue: QueueName, job: { id: string; tenant: string; priority: number; order: number }, moveBack: () => Promise<unknown>): Promise<void> {
    const product = this.keys.fair(queue).product;
    const q = this.keys.queue(queue);
    await this.redis.jobsapiFairParkRunning(product, q, job.id, job.tenant, job.priority, job.order);
    await moveBack();
    await this.redis.jobsapiFairSettleParked(product, q, job.id);
    // A slot may be free for it (or one before it) already: no need to wait for the next look.
    await this.refill(queue);
  }

  /** Start looking every REFILL_EVERY_MS, each queue in turn (a worker process). */
  start(onError: (err: Error) => void): void {
    this.timer ??= setInterval(() => {
      for (const queue of QUEUE_NAMES) this.refill(queue).catch(onError);
    }, REFILL_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
