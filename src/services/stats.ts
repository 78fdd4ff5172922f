import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { readWorkers } from '../coordination/worker-registry.js';
import { AppError } from '../errors.js';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { allQueueCounts, overallHealth, queueVerdicts, sumCounts } from '../observability/queue-stats.js';
import { infoField, nodesOf, pingWithin } from '../redis/connection.js';
import { API_VERSION } from '../version.js';

/** How long /ready waits for Redis to answer a PING. */
const READY_TIMEOUT_MS = 1000;

/** The 503 of a process that should not get traffic yet. */
export function notReady(why: string): AppError {
  return new AppError(503, 'NOT_READY', why, { 'retry-after': '5' });
}

/**
 * What the metrics, workers and readiness routes report: job counts per
 * queue, the health verdict, the worker processes, Redis and this process.
 */
export class StatsService {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly queues: Record<QueueName, Queue>,
    /** This process's workers, once the workers plugin has made them (null with WORKERS=off). */
    private readonly localWorkers: () => Record<QueueName, Worker> | null,
  ) {}

  /** Job counts per queue and in total. */
  async jobCounts() {
    const counts = await allQueueCounts(this.queues, this.redis);
    return { ...counts, total: sumCounts(Object.values(counts)) };
  }

  /** Job counts per queue, each queue's verdict by the guide's indicators, and the verdict of all queues. */
  async queueHealth() {
    const counts = await allQueueCounts(this.queues, this.redis);
    const activeNow = Object.fromEntries(QUEUE_NAMES.map((q) => [q, counts[q].active])) as Record<QueueName, number>;
    const { queues: workers } = await readWorkers(this.redis, this.prefix, activeNow);
    const slots = Object.fromEntries(QUEUE_NAMES.map((q) => [q, workers[q].concurrency])) as Record<QueueName, number>;
    const queues = await queueVerdicts(this.redis, this.queues, counts, slots);
    return { ...counts, health: { ...overallHealth(Object.values(queues)), queues } };
  }

  /** This process, its Redis, its workers and the queues. */
  async system() {
    // Every node's INFO (one Redis, or each master of a Cluster): memory and clients are their sums.
    const [{ health, ...counts }, infos] = await Promise.all([this.queueHealth(), Promise.all(nodesOf(this.redis).map((n) => n.info()))]);
    const field = (name: string) => infoField(infos[0] ?? '', name) ?? null;
    const num = (name: string) => {
      const values = infos.map((info) => infoField(info, name));
      return values.some((v) => v === undefined) ? null : values.reduce((sum, v) => sum + Number(v), 0);
    };
    const mem = process.memoryUsage();
    const workers = this.localWorkers();
    const running = workers ? QUEUE_NAMES.filter((q) => workers[q].isRunning()) : [];
    return {
      version: API_VERSION,
      process: { pid: process.pid, node: process.version, uptimeSec: Math.round(process.uptime()), rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
      redis: {
        status: this.redis.status,
        version: field('redis_version'),
        usedMemoryBytes: num('used_memory'),
        connectedClients: num('connected_clients'),
        maxmemoryPolicy: field('maxmemory_policy'),
      },
      workers: { enabled: workers !== null, running },
      queues: { ...counts, health },
    };
  }

  /** The worker processes of every host that reported in the last 30 s, and per queue their sum plus the jobs active now. */
  async workers() {
    const active = await Promise.all(QUEUE_NAMES.map((q) => this.queues[q].getActiveCount()));
    const activeNow = Object.fromEntries(QUEUE_NAMES.map((q, i) => [q, active[i]!])) as Record<QueueName, number>;
    return readWorkers(this.redis, this.prefix, activeNow);
  }

  /** Readiness of this API process (see `readiness`). */
  ready() {
    return readiness(this.redis, this.localWorkers());
  }
}

/**
 * Readiness of a process, the API's /ready and a worker process's alike:
 * Redis answers within READY_TIMEOUT_MS and the process's workers (if any)
 * run; otherwise a 503 that says which.
 */
/** Whether a node of Redis has reached its maxmemory (with noeviction it then refuses writes). */
async function isFull(redis: Redis): Promise<boolean> {
  const infos = await Promise.all(nodesOf(redis).map((n) => withinMs(n.info('memory'), READY_TIMEOUT_MS)));
  return infos.some((info) => {
    if (info === undefined) return false;
    const max = Number(infoField(info, 'maxmemory') ?? 0);
    return max > 0 && Number(infoField(info, 'used_memory') ?? 0) >= max;
  });
}

/** The value, or undefined when it does not come within `ms` (or fails). */
function withinMs<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

export async function readiness(redis: Redis, workers: Record<QueueName, Worker> | null) {
  if (!(await pingWithin(redis, READY_TIMEOUT_MS))) throw notReady('Redis does not answer.');
  if (await isFull(redis)) throw notReady('Redis is full (used_memory has reached maxmemory): it refuses new jobs.');
  const stopped = workers ? Object.entries(workers).filter(([, w]) => !w.isRunning()).map(([q]) => q) : [];
  if (stopped.length) throw notReady(`Workers are not running for: ${stopped.join(', ')}.`);
  return { status: 'ready' as const, redis: 'ok' as const, workers: workers ? ('running' as const) : ('off' as const) };
}
