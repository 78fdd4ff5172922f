import os from 'node:os';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES, QUEUE_NAMES, type QueueName } from '../jobs/index.js';

/** A process that has not reported for this long is offline. */
const OFFLINE_AFTER_MS = 30_000;
const REPORT_EVERY_MS = 1000;
const COUNTERS = ['processed', 'completed', 'failed', 'retried'] as const;
type Counter = (typeof COUNTERS)[number];

export type ProcessReport = {
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  lastSeen: string;
  queues: Partial<Record<QueueName, { concurrency: number } & Record<Counter, number>>>;
};

export type QueueWorkers = { online: number; concurrency: number; active: number } & Record<Counter, number>;

function registryKey(prefix: string): string {
  return `${prefix}:jobsapi:workers`;
}
function processKey(prefix: string, id: string): string {
  return `${prefix}:jobsapi:workers:${id}`;
}

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

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly workers: Partial<Record<QueueName, Worker>>,
  ) {
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
    const key = processKey(this.prefix, this.id);
    const fields: Record<string, string | number> = { host: os.hostname(), pid: process.pid, startedAt: this.id.split(':').pop()!, lastSeen: now };
    for (const queue of Object.keys(this.workers) as QueueName[]) fields[`${queue}:concurrency`] = QUEUES[queue].concurrency;
    for (const [k, v] of this.counts) fields[k] = v;
    await this.redis
      .multi()
      .hset(key, fields)
      .pexpire(key, OFFLINE_AFTER_MS)
      .zadd(registryKey(this.prefix), now, this.id)
      .zremrangebyscore(registryKey(this.prefix), '-inf', now - OFFLINE_AFTER_MS)
      .exec();
  }

  /** Say goodbye at shutdown, so the process is not listed for another 30 s. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.multi().del(processKey(this.prefix, this.id)).zrem(registryKey(this.prefix), this.id).exec().catch(() => {});
  }
}

/** The worker processes that reported in the last 30 s, and per queue their sum plus the jobs active now. */
export async function readWorkers(
  redis: Redis,
  prefix: string,
  activeNow: Record<QueueName, number>,
  now = Date.now(),
): Promise<{ queues: Record<QueueName, QueueWorkers>; processes: ProcessReport[] }> {
  const ids = await redis.zrangebyscore(registryKey(prefix), now - OFFLINE_AFTER_MS, '+inf');
  const m = redis.multi();
  for (const id of ids) m.hgetall(processKey(prefix, id));
  const rows = ids.length ? ((await m.exec()) ?? []) : [];
  const queues = Object.fromEntries(
    QUEUE_NAMES.map((q) => [q, { online: 0, concurrency: 0, active: activeNow[q], processed: 0, completed: 0, failed: 0, retried: 0 }]),
  ) as Record<QueueName, QueueWorkers>;
  const processes: ProcessReport[] = [];
  rows.forEach(([err, h], i) => {
    const r = h as Record<string, string> | null;
    if (err || !r || !r.host) return;
    const report: ProcessReport = {
      id: ids[i]!,
      host: r.host,
      pid: Number(r.pid),
      startedAt: new Date(parseInt(r.startedAt ?? '0', 36)).toISOString(),
      lastSeen: new Date(Number(r.lastSeen)).toISOString(),
      queues: {},
    };
    for (const q of QUEUE_NAMES) {
      if (r[`${q}:concurrency`] === undefined) continue;
      const stats = { concurrency: Number(r[`${q}:concurrency`]), ...(Object.fromEntries(COUNTERS.map((c) => [c, Number(r[`${q}:${c}`] ?? 0)])) as Record<Counter, number>) };
      report.queues[q] = stats;
      const sum = queues[q];
      sum.online += 1;
      sum.concurrency += stats.concurrency;
      for (const c of COUNTERS) sum[c] += stats[c];
    }
    processes.push(report);
  });
  return { queues, processes };
}
