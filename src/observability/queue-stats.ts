import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, QUEUES, type QueueName } from '../jobs/index.js';
import { redisKeys } from '../redis/keys.js';

export type QueueCounts = { waiting: number; active: number; completed: number; failed: number; delayed: number; cancelled: number; total: number };
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';
export type QueueHealth = { status: HealthStatus; message: string };

const HOUR_MS = 3600_000;


/** The product's keys of a BullMQ queue, from the queue itself. */
function productKeys(queue: Queue) {
  const name = QUEUE_NAMES.find((q) => QUEUES[q].redisName === queue.name)!;
  const keys = redisKeys(queue.opts.prefix ?? 'bull');
  return { cancelled: keys.cancelled(name), parked: keys.fair(name).parked };
}

/**
 * Jobs of a queue in each state; BullMQ counts a cancelled job as failed, the
 * counts here do not, and a job parked for its tenant's turn (fair dispatch),
 * which BullMQ does not see, is waiting.
 */
export async function queueCounts(queue: Queue, redis: Redis): Promise<QueueCounts> {
  const keys = productKeys(queue);
  const [c, cancelled, parked] = await Promise.all([
    queue.getJobCounts('waiting', 'prioritized', 'waiting-children', 'active', 'completed', 'failed', 'delayed'),
    redis.zcard(keys.cancelled),
    redis.hlen(keys.parked),
  ]);
  const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c['waiting-children'] ?? 0) + parked;
  const failed = Math.max(0, (c.failed ?? 0) - cancelled);
  const counts = { waiting, active: c.active ?? 0, completed: c.completed ?? 0, failed, delayed: c.delayed ?? 0, cancelled: Math.min(cancelled, c.failed ?? 0) };
  return { ...counts, total: counts.waiting + counts.active + counts.completed + counts.failed + counts.delayed + counts.cancelled };
}

export async function allQueueCounts(queues: Record<QueueName, Queue>, redis: Redis): Promise<Record<QueueName, QueueCounts>> {
  const list = await Promise.all(QUEUE_NAMES.map((q) => queueCounts(queues[q], redis)));
  return Object.fromEntries(QUEUE_NAMES.map((q, i) => [q, list[i]!])) as Record<QueueName, QueueCounts>;
}

export function sumCounts(counts: QueueCounts[]): QueueCounts {
  const total: QueueCounts = { waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, cancelled: 0, total: 0 };
  for (const c of counts) for (const k of Object.keys(total) as (keyof QueueCounts)[]) total[k] += c[k];
  return total;
}

/** Jobs that finished in the last hour, by outcome (finished sets are scored by finish time); a cancel is neither. */
export async function lastHourOutcomes(redis: Redis, queue: Queue, now = Date.now()): Promise<{ completed: number; failed: number }> {
  const client = redis;
  const since = now - HOUR_MS;
  const [completed, failed, cancelled] = await Promise.all([
    client.zcount(queue.keys.completed!, since, '+inf'),
    client.zcount(queue.keys.failed!, since, '+inf'),
    client.zcount(productKeys(queue).cancelled, since, '+inf'),
  ]);
  return { completed, failed: Math.max(0, failed - cancelled) };
}

/** One queue's verdict by the operations guide's indicators: each at healthy, warning or critical. */
export type IndicatorStatus = 'healthy' | 'warning' | 'critical';
export type QueueVerdict = {
  status: IndicatorStatus;
  /** Why it is not healthy: one sentence per indicator past its threshold (empty when healthy). */
  reasons: string[];
  waiting: number;
  active: number;
  /** The summed concurrency of the worker processes serving the queue now (GET /api/workers). */
  maxConcurrency: number;
  /** active as a percentage of maxConcurrency; null when no worker process serves the queue. */
  activePercent: number | null;
  completedLastHour: number;
  failedLastHour: number;
  /** failed / (completed + failed) in the last hour, in percent; null when nothing finished. */
  failureRatePercent: number | null;
  /** Mean time from when a job could run (enqueue plus any delay it asked for) to its start, over the jobs started most recently; null when none did in the last hour. */
  averageWaitSec: number | null;
};
export type QueueIndicators = Omit<QueueVerdict, 'status' | 'reasons'>;

/**
 * The operations guide's health indicators (seed 000), per queue:
 *
 * | indicator | healthy | warning | critical |
 * |---|---|---|---|
 * | active, % of max concurrency | < 80 % | 80-95 % | > 95 % |
 * | waiting jobs | < 1000 | 1000-5000 | > 5000 |
 * | failures in the last hour, % of finished | < 5 % | 5-10 % | > 10 % |
 * | average wait time | < 30 s | 30 s - 2 min | > 2 min |
 *
 * Jobs waiting with no worker process to serve them is critical too. The
 * worst indicator decides the queue's status.
 */
export function assessQueue(queue: QueueName, x: QueueIndicators): QueueVerdict {
  const reasons: string[] = [];
  let status: IndicatorStatus = 'healthy';
  const rank: Record<IndicatorStatus, number> = { healthy: 0, warning: 1, critical: 2 };
  const check = (value: number | null, warnAt: number, criticalAbove: number, why: (v: number) => string) => {
    if (value === null || value < warnAt) return;
    const level: IndicatorStatus = value > criticalAbove ? 'critical' : 'warning';
    reasons.push(`${queue}: ${why(value)} (${level}: ${level === 'critical' ? `above ${criticalAbove}` : `${warnAt} or more`})`);
    if (rank[level] > rank[status]) status = level;
  };
  check(x.activePercent, 80, 95, (v) => `${x.active} active of ${x.maxConcurrency} slots, ${v}%`);
  check(x.waiting, 1000, 5000, (v) => `${v} jobs waiting`);
  check(x.failureRatePercent, 5, 10, (v) => `${v}% of the jobs that finished in the last hour failed`);
  check(x.averageWaitSec, 30, 120, (v) => `jobs waited ${v} s on average before starting`);
  if (x.maxConcurrency === 0 && x.waiting > 0) {
    reasons.push(`${queue}: ${x.waiting} jobs waiting and no worker process serves the queue (critical)`);
    status = 'critical';
  }
  return { status, reasons, ...x };
}

/** The worst queue decides, in the contract's words: warning is `degraded`, critical is `unhealthy`. */
export function overallHealth(verdicts: QueueVerdict[]): QueueHealth {
  const worst = verdicts.some((v) => v.status === 'critical') ? 'unhealthy' : verdicts.some((v) => v.status === 'warning') ? 'degraded' : 'healthy';
  const reasons = verdicts.flatMap((v) => v.reasons);
  return { status: worst, message: reasons.length ? reasons.join('; ') : 'All queues operating normally' };
}

/** How many of the most recently started jobs the average wait time is taken over. */
const WAIT_SAMPLE = 50;

/** Mean wait of the jobs that started most recently (active now, and finished in the last hour), in seconds. */
async function averageWaitSec(redis: Redis, queue: Queue, now: number): Promise<number | null> {
  const since = now - HOUR_MS;
  const [active, completed, failed] = await Promise.all([
    redis.lrange(queue.keys.active!, 0, WAIT_SAMPLE - 1),
    redis.zrevrangebyscore(queue.keys.completed!, '+inf', since, 'LIMIT', 0, WAIT_SAMPLE),
    redis.zrevrangebyscore(queue.keys.failed!, '+inf', since, 'LIMIT', 0, WAIT_SAMPLE),
  ]);
  const ids = [...new Set([...active, ...completed, ...failed])];
  if (ids.length === 0) return null;
  // One queue's keys share its hash tag: one pipeline, on one node of a Cluster too.
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hmget(queue.toKey(id), 'timestamp', 'delay', 'processedOn');
  const waits: number[] = [];
  for (const [err, row] of (await pipe.exec()) ?? []) {
    const [timestamp, delay, processedOn] = (err ? [] : (row as Array<string | null>)).map(Number);
    if (timestamp && processedOn) waits.push(Math.max(0, processedOn - timestamp - (delay || 0)));
  }
  if (waits.length === 0) return null;
  return Math.round(waits.reduce((a, b) => a + b, 0) / waits.length / 100) / 10;
}

/** Every queue's indicators and verdict; `maxConcurrency` from the worker registry. */
export async function queueVerdicts(
  redis: Redis,
  queues: Record<QueueName, Queue>,
  counts: Record<QueueName, QueueCounts>,
  maxConcurrency: Record<QueueName, number>,
  now = Date.now(),
): Promise<Record<QueueName, QueueVerdict>> {
  const rows = await Promise.all(
    QUEUE_NAMES.map(async (q) => {
      const [outcomes, wait] = await Promise.all([lastHourOutcomes(redis, queues[q], now), averageWaitSec(redis, queues[q], now)]);
      const finished = outcomes.completed + outcomes.failed;
      const slots = maxConcurrency[q];
      return assessQueue(q, {
        waiting: counts[q].waiting,
        active: counts[q].active,
        maxConcurrency: slots,
        activePercent: slots > 0 ? Math.round((counts[q].active / slots) * 1000) / 10 : null,
        completedLastHour: outcomes.completed,
        failedLastHour: outcomes.failed,
        failureRatePercent: finished > 0 ? Math.round((outcomes.failed / finished) * 1000) / 10 : null,
        averageWaitSec: wait,
      });
    }),
  );
  return Object.fromEntries(QUEUE_NAMES.map((q, i) => [q, rows[i]!])) as Record<QueueName, QueueVerdict>;
}
