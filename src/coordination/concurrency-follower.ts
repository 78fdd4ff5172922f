import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { FOLLOW_EVERY_MS, readConcurrencyOverrides } from './concurrency-overrides.js';

/**
 * The worker half of worker:scale (the API writes the overrides:
 * concurrency-overrides.ts): every FOLLOW_EVERY_MS, read each queue's
 * override (three GETs) and set the queue's BullMQ worker to it, or back to
 * QUEUE_CONCURRENCY when there is none. The worker registry then reports the
 * new concurrency (WorkerReporter reads the worker's), and fair scheduling's
 * capacity follows it (TenantSlots reads the worker's too).
 *
 * A lower concurrency takes effect as jobs end (none is stopped). A higher one
 * is taken at once: BullMQ's main loop, when it has as many jobs as it may,
 * waits for one of them to end before it looks at its concurrency again, so the
 * follower wakes it (pause without waiting, then resume: BullMQ's own way to
 * make a worker fetch again while its jobs run).
 */
export class ConcurrencyFollower {
  private timer: NodeJS.Timeout | undefined;
  /** A read still in flight (Redis away: the worker connection waits): the next tick does not pile another on it. */
  private reading: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly workers: Readonly<Record<QueueName, Worker>>,
    private readonly configured: Readonly<Record<QueueName, number>>,
    private readonly onChange: (queue: QueueName, from: number, to: number) => void = () => {},
  ) {}

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), FOLLOW_EVERY_MS);
    this.timer.unref();
  }

  /** Read the overrides once and apply them; resolves when done (a failed read changes nothing). */
  refresh(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.reading ??= readConcurrencyOverrides(this.redis, this.prefix)
      .then(
        (overrides) => {
          for (const queue of QUEUE_NAMES) this.apply(queue, overrides[queue] ?? this.configured[queue]);
        },
        () => {},
      )
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  private apply(queue: QueueName, target: number): void {
    const worker = this.workers[queue];
    const from = worker.concurrency;
    if (this.stopped || from === target || worker.closing) return;
    worker.concurrency = target;
    this.onChange(queue, from, target);
    if (target > from && worker.isRunning() && !worker.isPaused()) {
      void worker
        .pause(true)
        .then(() => (worker.closing ? undefined : worker.resume()))
        .catch(() => {});
    }
  }

  /** No more reads or changes (the runtime's close: before the workers close). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
