import type { Redis } from 'ioredis';
import { clearConcurrencyOverride, FOLLOW_EVERY_MS, readConcurrencyOverrides, setConcurrencyOverride } from '../coordination/concurrency-overrides.js';
import { readWorkers } from '../coordination/worker-registry.js';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';

/** A queue's concurrency: as configured, as set at run time, in force, and what each live worker process runs. */
export type QueueConcurrency = {
  queue: QueueName;
  /** QUEUE_CONCURRENCY (or the contract's) of this API process's configuration. */
  configured: number;
  /** Set by worker:scale, or null. */
  override: number | null;
  /** What every worker process runs once it has followed: the override, else the configured value. */
  concurrency: number;
  /** How soon every worker process follows a change. */
  followWithinMs: number;
  /** The worker processes that reported in the last 30 s, each with the concurrency it last reported. */
  processes: Array<{ id: string; host: string; pid: number; concurrency: number }>;
  /** Their sum: how many jobs of the queue may run at once now. */
  total: number;
};

/**
 * worker:scale: a queue's concurrency changed at run time for every worker
 * process, through Redis (the workers follow it: ConcurrencyFollower), and
 * what each live process reports running (the worker registry).
 */
export class QueueCapacity {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly configured: Readonly<Record<QueueName, number>>,
  ) {}

  async get(queue: QueueName): Promise<QueueConcurrency> {
    const noActive = Object.fromEntries(QUEUE_NAMES.map((q) => [q, 0])) as Record<QueueName, number>;
    const [overrides, workers] = await Promise.all([readConcurrencyOverrides(this.redis, this.prefix), readWorkers(this.redis, this.prefix, noActive)]);
    const override = overrides[queue];
    const processes = workers.processes.flatMap((p) => {
      const q = p.queues[queue];
      return q ? [{ id: p.id, host: p.host, pid: p.pid, concurrency: q.concurrency }] : [];
    });
    return {
      queue,
      configured: this.configured[queue],
      override,
      concurrency: override ?? this.configured[queue],
      followWithinMs: FOLLOW_EVERY_MS,
      processes,
      total: processes.reduce((sum, p) => sum + p.concurrency, 0),
    };
  }

  async set(queue: QueueName, concurrency: number): Promise<QueueConcurrency> {
    await setConcurrencyOverride(this.redis, this.prefix, queue, concurrency);
    return this.get(queue);
  }

  async reset(queue: QueueName): Promise<QueueConcurrency> {
    await clearConcurrencyOverride(this.redis, this.prefix, queue);
    return this.get(queue);
  }
}
