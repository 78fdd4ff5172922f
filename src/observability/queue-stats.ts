import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';

export type QueueCounts = { waiting: number; active: number; completed: number; failed: number; delayed: number; total: number };
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';
export type QueueHealth = { status: HealthStatus; message: string };

const HOUR_MS = 3600_000;

/** Counts of one queue in the API's five states (prioritized jobs are waiting). */
export async function queueCounts(queue: Queue): Promise<QueueCounts> {
  const c = await queue.getJobCounts('waiting', 'prioritized', 'waiting-children', 'active', 'completed', 'failed', 'delayed');
  const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0) + (c['waiting-children'] ?? 0);
  const counts = { waiting, active: c.active ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0, delayed: c.delayed ?? 0 };
  return { ...counts, total: counts.waiting + counts.active + counts.completed + counts.failed + counts.delayed };
}

export async function allQueueCounts(queues: Record<QueueName, Queue>): Promise<Record<QueueName, QueueCounts>> {
  const list = await Promise.all(QUEUE_NAMES.map((q) => queueCounts(queues[q])));
  return Object.fromEntries(QUEUE_NAMES.map((q, i) => [q, list[i]!])) as Record<QueueName, QueueCounts>;
}

export function sumCounts(counts: QueueCounts[]): QueueCounts {
  const total: QueueCounts = { waiting: 0, active: 0, completed: 0, failed: 0, delayed: 0, total: 0 };
  for (const c of counts) for (const k of Object.keys(total) as (keyof QueueCounts)[]) total[k] += c[k];
  return total;
}

/** Jobs that finished in the last hour, by outcome (finished sets are scored by finish time). */
export async function lastHourOutcomes(redis: Redis, queue: Queue, now = Date.now()): Promise<{ completed: number; failed: number }> {
  const client = redis;
  const since = now - HOUR_MS;
  const [completed, failed] = await Promise.all([
    client.zcount(queue.keys.completed!, since, '+inf'),
    client.zcount(queue.keys.failed!, since, '+inf'),
  ]);
  return { completed, failed };
}

/**
 * The operations guide's thresholds: waiting < 1000 and failures in the last
 * hour < 5 % is healthy; waiting up to 5000 or failures up to 10 % is
 * degraded; beyond is unhealthy. The worst queue decides.
 */
export function assessHealth(per: Array<{ queue: QueueName; waiting: number; completedLastHour: number; failedLastHour: number }>): QueueHealth {
  const problems: string[] = [];
  let worst: HealthStatus = 'healthy';
  const rank: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };
  const raise = (s: HealthStatus, why: string) => {
    problems.push(why);
    if (rank[s] > rank[worst]) worst = s;
  };
  for (const q of per) {
    const finished = q.completedLastHour + q.failedLastHour;
    const failRate = finished ? q.failedLastHour / finished : 0;
    if (q.waiting > 5000) raise('unhealthy', `${q.queue}: ${q.waiting} jobs waiting`);
    else if (q.waiting >= 1000) raise('degraded', `${q.queue}: ${q.waiting} jobs waiting`);
    const pct = Math.round(failRate * 1000) / 10;
    if (failRate > 0.1) raise('unhealthy', `${q.queue}: ${pct}% of jobs failed in the last hour`);
    else if (failRate >= 0.05) raise('degraded', `${q.queue}: ${pct}% of jobs failed in the last hour`);
  }
  return { status: worst, message: problems.length ? problems.join('; ') : 'All queues operating normally' };
}

export async function queuesHealth(
  redis: Redis,
  queues: Record<QueueName, Queue>,
  counts: Record<QueueName, QueueCounts>,
): Promise<QueueHealth> {
  const outcomes = await Promise.all(QUEUE_NAMES.map((q) => lastHourOutcomes(redis, queues[q])));
  return assessHealth(
    QUEUE_NAMES.map((q, i) => ({ queue: q, waiting: counts[q].waiting, completedLastHour: outcomes[i]!.completed, failedLastHour: outcomes[i]!.failed })),
  );
}
