import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QUEUES, QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { createRedis, type RedisTarget } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';

export type JobEvent =
  | { type: 'progress'; jobId: string; progress: number }
  | { type: 'log'; jobId: string }
  | { type: 'completed'; jobId: string }
  | { type: 'failed'; jobId: string; failedReason: string }
  /** Removed from its queue (by the API, or cancelled before it started). */
  | { type: 'removed'; jobId: string };

export type AnyJobEvent = JobEvent & { queue: QueueName };

/**
 * Job events for this API process: one BullMQ QueueEvents per queue (each
 * one blocking connection) and one pub/sub connection for log notifications,
 * fanned out to every listener of a job — a thousand open streams or long
 * polls cost no Redis connection of their own. Started on the first
 * listener (or by the metrics), stopped with the app.
 */
export class JobEventsHub {
  private readonly byJob = new Map<string, Set<(e: JobEvent) => void>>();
  private readonly everyJob = new Set<(e: AnyJobEvent) => void>();
  private started: Promise<void> | undefined;
  private readonly connections: Redis[] = [];
  private readonly queueEvents: QueueEvents[] = [];

  constructor(
    private readonly redis: RedisTarget,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  start(): Promise<void> {
    this.started ??= this.open();
    return this.started;
  }

  private async open(): Promise<void> {
    for (const queue of QUEUE_NAMES) {
      const connection = createRedis(this.redis, 'worker', `jobs-api:events:${queue}`);
      connection.on('error', () => {});
      this.connections.push(connection);
      const events = new QueueEvents(QUEUES[queue].redisName, { connection, prefix: this.prefix });
      events.on('error', (err) => this.logger.debug({ queue, err: err.message }, 'queue events error'));
      events.on('progress', ({ jobId, data }) => this.emit(queue, { type: 'progress', jobId, progress: Number(data) }));
      events.on('completed', ({ jobId }) => this.emit(queue, { type: 'completed', jobId }));
      events.on('failed', ({ jobId, failedReason }) => this.emit(queue, { type: 'failed', jobId, failedReason }));
      events.on('removed', ({ jobId }) => this.emit(queue, { type: 'removed', jobId }));
      this.queueEvents.push(events);
    }
    const subscriber = createRedis(this.redis, 'worker', 'jobs-api:events:logs');
    subscriber.on('error', () => {});
    this.connections.push(subscriber);
    subscriber.on('message', (_channel: string, jobId: string) => {
      const listeners = this.byJob.get(jobId);
      if (listeners) for (const l of listeners) l({ type: 'log', jobId });
    });
    await subscriber.subscribe(redisKeys(this.prefix).jobLogChannel);
    await Promise.all(this.queueEvents.map((e) => e.waitUntilReady()));
  }

  private emit(queue: QueueName, event: JobEvent): void {
    const listeners = this.byJob.get(event.jobId);
    if (listeners) for (const l of listeners) l(event);
    for (const l of this.everyJob) l({ ...event, queue });
  }

  /** Listen to one job's events; call the answer to stop. */
  async watch(jobId: string, listener: (e: JobEvent) => void): Promise<() => void> {
    await this.start();
    let set = this.byJob.get(jobId);
    if (!set) this.byJob.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.byJob.delete(jobId);
    };
  }

  /** Listen to every job's events (metrics). */
  async watchAll(listener: (e: AnyJobEvent) => void): Promise<void> {
    await this.start();
    this.everyJob.add(listener);
  }

  get listeners(): number {
    let n = 0;
    for (const s of this.byJob.values()) n += s.size;
    return n;
  }

  async close(): Promise<void> {
    if (!this.started) return;
    await this.started.catch(() => {});
    await Promise.all(this.queueEvents.map((e) => e.close().catch(() => {})));
    await Promise.all(this.connections.map((c) => c.quit().catch(() => c.disconnect())));
  }
}
