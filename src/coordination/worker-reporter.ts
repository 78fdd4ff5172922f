import os from 'node:os';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { CANCELLED } from './cancel-requests.js';
import { COUNTERS, MINUTE_MS, OFFLINE_AFTER_MS, THROUGHPUT_TTL_SECONDS, type Counter, type Finished } from './worker-registry.js';

const REPORT_EVERY_MS = 1000;

/** Jobs finished per minute since the epoch. */
type MinuteCounts = Map<number, Record<Finished, number>>;

/**
 * What the workers of this process have done since it started, reported to
 * Redis every second (when something changed) and kept alive by a heartbeat,
 * so any API process can answer GET /api/workers:
 * - processed: attempts that ended; completed; failed: attempts that failed
 *   for good; retried: failed attempts that will run again.
 * And per queue and minute, the jobs that finished in it (completed, failed
 * for good, cancelled), added to that minute's bucket in Redis, which every
 * process adds to (GET /api/queues/:queue/throughput reads them).
 */
export class WorkerReporter {
  readonly id = `${os.hostname()}:${process.pid}:${Date.now().toString(36)}`;
  private readonly counts = new Map<string, number>();
  private dirty = true;
  private timer: NodeJS.Timeout | undefined;
  private lastBeat = 0;
  private readonly keys: RedisKeys;
  /** Finished jobs not yet added to Redis, per queue and minute since the epoch. */
  private pending = new Map<QueueName, MinuteCounts>();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly workers: Partial<Record<QueueName, Worker>>,
  ) {
    this.keys = redisKeys(prefix);
    for (const [queue, worker] of Object.entries(workers) as Array<[QueueName, Worker]>) {
      for (const c of COUNTERS) this.counts.set(`${queue}:${c}`, 0);
      worker.on('completed', () => {
        this.bump(queue, 'completed');
        this.finished(queue, 'completed');
      });
      worker.on('failed', (job: Job | undefined, err: Error) => {
        const again = job !== undefined && err?.name !== 'UnrecoverableError' && job.attemptsMade < (job.opts.attempts ?? 1);
        this.bump(queue, again ? 'retried' : 'failed');
        if (!again) this.finished(queue, err?.message === CANCELLED ? 'cancelled' : 'failed');
      });
    }
  }

  private bump(queue: QueueName, counter: Exclude<Counter, 'processed'>): void {
    for (const c of [counter, 'processed'] as const) this.counts.set(`${queue}:${c}`, (this.counts.get(`${queue}:${c}`) ?? 0) + 1);
    this.dirty = true;
  }

  private finished(queue: QueueName, outcome: Finished, now = Date.now()): void {
    let minutes = this.pending.get(queue);
    if (!minutes) this.pending.set(queue, (minutes = new Map() as MinuteCounts));
    const minute = Math.floor(now / MINUTE_MS);
    let bucket = minutes.get(minute);
    if (!bucket) minutes.set(minute, (bucket = { completed: 0, failed: 0, cancelled: 0 }));
    bucket[outcome] += 1;
    this.dirty = true;
  }

  /** Something the registry shows changed (a queue's concurrency, by worker:scale): report it at the next tick, not the next heartbeat. */
  changed(): void {
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
    await Promise.all([
      this.redis
        .multi()
        .hset(key, fields)
        .pexpire(key, OFFLINE_AFTER_MS)
        .zadd(this.keys.workerRegistry, now, this.id)
        .zremrangebyscore(this.keys.workerRegistry, '-inf', now - OFFLINE_AFTER_MS)
        .exec(),
      this.reportThroughput(),
    ]);
  }

  /**
   * Add what finished since the last report to the minutes' buckets: one
   * MULTI per queue (its buckets share the queue's hash tag). What could not
   * be written is kept for the next report.
   */
  private async reportThroughput(): Promise<void> {
    if (this.pending.size === 0) return;
    const sending = this.pending;
    this.pending = new Map();
    await Promise.all(
      [...sending].map(async ([queue, minutes]) => {
        const tx = this.redis.multi();
        for (const [minute, counts] of minutes) {
          const bucket = this.keys.throughput(queue, minute);
          for (const [outcome, n] of Object.entries(counts)) if (n > 0) tx.hincrby(bucket, outcome, n);
          tx.expire(bucket, THROUGHPUT_TTL_SECONDS);
        }
        try {
          const results = await tx.exec();
          if (!results || results.some(([err]) => err)) throw new Error('throughput buckets not written');
        } catch (err) {
          this.keep(queue, minutes);
          this.dirty = true;
          throw err;
        }
      }),
    );
  }

  /** Put counts that were not written back, to be sent with the next report. */
  private keep(queue: QueueName, minutes: MinuteCounts): void {
    let into = this.pending.get(queue);
    if (!into) this.pending.set(queue, (into = new Map() as MinuteCounts));
    for (const [minute, counts] of minutes) {
      const bucket = into.get(minute);
      if (!bucket) into.set(minute, { ...counts });
      else for (const k of Object.keys(counts) as Finished[]) bucket[k] += counts[k];
    }
  }

  /** Say goodbye at shutdown, so the process is not listed for another 30 s. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    // The jobs that finished since the last report still count.
    await this.reportThroughput().catch(() => {});
    await this.redis.multi().del(this.keys.workerProcess(this.id)).zrem(this.keys.workerRegistry, this.id).exec().catch(() => {});
  }
}
