import type { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { redisKeys } from '../redis/keys.js';

/** A process that has not reported for this long is offline. */
export const OFFLINE_AFTER_MS = 30_000;
export const COUNTERS = ['processed', 'completed', 'failed', 'retried'] as const;
export type Counter = (typeof COUNTERS)[number];

export type ProcessReport = {
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  lastSeen: string;
  queues: Partial<Record<QueueName, { concurrency: number } & Record<Counter, number>>>;
};

export type QueueWorkers = { online: number; concurrency: number; active: number } & Record<Counter, number>;

/** What the throughput buckets count per minute: attempts that completed, failed for good, or were stopped on request (cancelled). */
export const FINISHED = ['completed', 'failed', 'cancelled'] as const;
export type Finished = (typeof FINISHED)[number];
/** A minute's bucket lives a day and an hour: the longest window read is a day. */
export const THROUGHPUT_TTL_SECONDS = 25 * 3600;
export const MINUTE_MS = 60_000;

/** One minute of a queue's throughput: when it began, and the jobs that finished in it. */
export type MinuteBucket = { minute: string } & Record<Finished, number>;

/**
 * The jobs of a queue the workers finished in each of the last `windowMin`
 * minutes (the current one included), oldest first: the buckets WorkerReporter
 * writes, one HMGET per minute in one pipeline (every bucket of a queue shares
 * its hash tag). Exact however few finished jobs BullMQ retains.
 */
export async function readThroughput(redis: Redis, prefix: string, queue: QueueName, windowMin: number, now = Date.now()): Promise<MinuteBucket[]> {
  const keys = redisKeys(prefix);
  const last = Math.floor(now / MINUTE_MS);
  const minutes = Array.from({ length: windowMin }, (_, i) => last - windowMin + 1 + i);
  const p = redis.pipeline();
  for (const m of minutes) p.hmget(keys.throughput(queue, m), ...FINISHED);
  const rows = (await p.exec()) ?? [];
  return minutes.map((m, i) => {
    const [err, values] = rows[i] ?? [null, null];
    if (err) throw err;
    const v = (values as Array<string | null> | null) ?? [];
    return { minute: new Date(m * MINUTE_MS).toISOString(), ...(Object.fromEntries(FINISHED.map((f, j) => [f, Number(v[j] ?? 0)])) as Record<Finished, number>) };
  });
}

/** Worker processes that reported in the last 30 s (WorkerReporter writes the registry). */
export async function workerProcesses(redis: Redis, prefix: string, now = Date.now()): Promise<number> {
  return redis.zcount(redisKeys(prefix).workerRegistry, now - OFFLINE_AFTER_MS, '+inf');
}

/** The worker processes that reported in the last 30 s, and per queue their sum plus the jobs active now. */
export async function readWorkers(
  redis: Redis,
  prefix: string,
  activeNow: Record<QueueName, number>,
  now = Date.now(),
): Promise<{ queues: Record<QueueName, QueueWorkers>; processes: ProcessReport[] }> {
  const keys = redisKeys(prefix);
  const ids = await redis.zrangebyscore(keys.workerRegistry, now - OFFLINE_AFTER_MS, '+inf');
  const m = redis.multi();
  for (const id of ids) m.hgetall(keys.workerProcess(id));
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
