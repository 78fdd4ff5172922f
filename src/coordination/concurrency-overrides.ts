import type { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { redisKeys } from '../redis/keys.js';

/** The most jobs of a queue one worker process may run at once: QUEUE_CONCURRENCY's bound. */
export const MAX_CONCURRENCY = 1000;
/** How often a worker process reads the queues' overrides: a change reaches every process within this. */
export const FOLLOW_EVERY_MS = 2000;

/**
 * A queue's concurrency set at run time (worker:scale, PUT
 * /api/queues/:queue/concurrency), over QUEUE_CONCURRENCY: the API writes
 * it, every worker process follows it (ConcurrencyFollower). One key per
 * queue, under the queue's hash tag; no time to live (it holds until DELETE).
 */
export async function readConcurrencyOverrides(redis: Redis, prefix: string): Promise<Record<QueueName, number | null>> {
  const keys = redisKeys(prefix);
  // One GET per queue: under Redis Cluster each key is on its queue's node.
  const raw = await Promise.all(QUEUE_NAMES.map((q) => redis.get(keys.queueConcurrency(q))));
  return Object.fromEntries(QUEUE_NAMES.map((q, i) => [q, parseConcurrency(raw[i] ?? null)])) as Record<QueueName, number | null>;
}

/** A stored override, or null when there is none (or it is not one a worker could run: ignored rather than applied). */
export function parseConcurrency(raw: string | null): number | null {
  if (raw === null || !/^\d{1,4}$/.test(raw)) return null;
  const n = Number(raw);
  return n >= 1 && n <= MAX_CONCURRENCY ? n : null;
}

export async function setConcurrencyOverride(redis: Redis, prefix: string, queue: QueueName, concurrency: number): Promise<void> {
  await redis.set(redisKeys(prefix).queueConcurrency(queue), String(concurrency));
}

export async function clearConcurrencyOverride(redis: Redis, prefix: string, queue: QueueName): Promise<void> {
  await redis.del(redisKeys(prefix).queueConcurrency(queue));
}
