import os from 'node:os';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { COUNTERS, OFFLINE_AFTER_MS, type Counter } from './worker-registry.js';

const REPORT_EVERY_MS = 1000;

/**
 * What the workers of this process have done since it started, reported to
 * Redis every second (when something changed) and kept alive by a heartbeat,
 * so any API process can answer GET /api/workers:
 * - processed: attempts that ended; completed; failed: attempts that failed
 *   for good; retried: failed attempts that will run again.
 */
export class WorkerReporter {
  readonly id = `${os.hostname()}:${process.pid}:${Date.now().toString(36)}`;
  private readonly counts = new Map<string, number>();
  private dirty = true;
  private timer: NodeJS.Timeout | undefined;
  private lastBeat = 0;
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly workers: Partial<Record<QueueName, Worker>>,
  ) {
    this.keys = redisKeys(prefix);
    for (const [queue, worker] of Object.entries(workers) as Array<[QueueName, Worker]>) {
      for (const c of COUNTERS) this.counts.set(`${queue}:${c}`, 0);
      worker.on('completed', () => this.bump(queue, 'completed'));
      worker.on('failed', (job: Job | undefined, err: Error) => {
        const again = job !== undefined && err?.name !== 'UnrecoverableError' && job.attemptsMade < (job.opts.attempts ?? 1);
        this.bump(queue, again ? 'retried' : 'failed');
      });
    }
  }

  private bump(queue: QueueName, counter: Exclude<Counter, 'processed'>): void {
    for (const c of [counter, 'processed'] as const) this.counts.set(`${queue}:${c}`, (this.counts.get(`${queue}:${c}`) ?? 0) + 1);
    this.dirty = true;
  }

  start(): void {
    this.timer = setInterval(() => void this.report().catch(() => {}), REPORT_EVERY_MS);
    this.timer.unref();
    void this.report().catch(() => {});
  }

  async report(now = Date.now()): Promise<void> {
    if (!this.dirty && now - this.lastBeat < OFFLINE_AFTER_MS / 3) return;
    this.dirty = false;
    this.lastBeat = now;
    const key = this.keys.workerProcess(this.id);
    const fields: Record<string, string | number> = { host: os.hostname(), pid: process.pid, startedAt: this.id.split(':').pop()!, lastSeen: now };
    for (const queue of Object.keys(this.workers) as QueueName[]) fields[`${queue}:concurrency`] = this.workers[queue]!.concurrency;
    for (const [k, v] of this.counts) fields[k] = v;
    await this.redis
      .multi()
      .hset(key, fields)
      .pexpire(key, OFFLINE_AFTER_MS)
      .zadd(this.keys.workerRegistry, now, this.id)
      .zremrangebyscore(this.keys.workerRegistry, '-inf', now - OFFLINE_AFTER_MS)
      .exec();
  }

  /** Say goodbye at shutdown, so the process is not listed for another 30 s. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.multi().del(this.keys.workerProcess(this.id)).zrem(this.keys.workerRegistry, this.id).exec().catch(() => {});
  }
}
