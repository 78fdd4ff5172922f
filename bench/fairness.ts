/**
 * P9: one tenant floods a queue, another submits a few jobs while the flood
 * runs. Each job is a real scan:full of a port that accepts and never answers
 * (it waits its timeout in the TLS handshake: a job of a known length), run by
 * two `npm run worker` processes. Measured: when each small job started after
 * its submission (BullMQ's own timestamps: added, processedOn), how long the
 * jobs took, how fast the flood drained, and the Redis commands per job.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { FairDispatch } from '../src/coordination/fair-dispatch.js';
import { workerProcesses } from '../src/coordination/worker-registry.js';
import { DEFAULT_JOB_OPTIONS, QUEUES, QUEUE_NAMES, type JobEnvelope, type QueueName } from '../src/jobs/index.js';
import { redisKeys } from '../src/redis/keys.js';
import { JobStore } from '../src/store/job-store.js';
import { percentile, redisCommands, until, type Child } from './harness.js';

export type FloodRun = {
  /** Each small job's wait from submission to start (ms). */
  waits: number[];
  waitP99: number;
  /** The small jobs' median run time (ms): one job-duration. */
  jobMs: number;
  /** Flood jobs per second, from the first enqueue to the queue drained. */
  floodRate: number;
  /** Redis commands per job over the whole run (enqueue, dispatch, work, completion). */
  commandsPerJob: number;
};

export type FloodOptions = {
  redis: Redis;
  prefix: string;
  /** Whether the API side admits jobs through fair dispatch (the product) or adds them first come, first served. */
  fair: boolean;
  flood: number;
  small: number;
  /** Between two small submissions (ms). */
  spacingMs: number;
  /** The worker processes, started on `prefix`. */
  startWorkers: () => Promise<Child[]>;
  /** Scan capacity per process and the tenant cap the workers run with (for the API side's admission). */
  concurrency: number;
  tenantCap: number;
};

const envelope = (tenant: string, serverId: string): JobEnvelope => ({ tenant, requestedBy: 'bench', recordId: 'r', input: { serverId } });

export async function floodAndSmall(o: FloodOptions): Promise<FloodRun> {
  const queues = Object.fromEntries(
    QUEUE_NAMES.map((q) => [q, new Queue(QUEUES[q].redisName, { connection: o.redis, prefix: o.prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS })]),
  ) as Record<QueueName, Queue>;
  const fair = o.fair ? new FairDispatch(o.redis, o.prefix, o.tenantCap, 1, () => o.concurrency) : undefined;
  const store = new JobStore(o.redis, o.prefix, queues, undefined, fair);
  const workers = await o.startWorkers();
  try {
    await until('P9: both worker processes reported', async () => (await workerProcesses(o.redis, o.prefix)) === workers.length, 30_000, 100);
    const parked = redisKeys(o.prefix).fair('scan').parked;
    const drained = async () => {
      const c = await queues.scan.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
      return Object.values(c).reduce((a, b) => a + b, 0) + (await o.redis.hlen(parked)) === 0;
    };
    const c0 = await redisCommands(o.redis);
    const t0 = performance.now();
    for (let i = 0; i < o.flood; i += 1000) {
      await store.addBulk(Array.from({ length: Math.min(1000, o.flood - i) }, () => ({ type: 'scan:full' as const, envelope: envelope('big', 'p9big') })));
    }
    // The flood is under way: the small tenant submits its jobs one by one.
    await new Promise((r) => setTimeout(r, 500));
    const small: string[] = [];
    for (let i = 0; i < o.small; i++) {
      small.push((await store.add('scan:full', envelope('small', 'p9small'))).jobId);
      await new Promise((r) => setTimeout(r, o.spacingMs));
    }
    // Each small job's times, read as soon as it ends (retention removes completed jobs past the last 1000).
    const ended = new Map<string, { timestamp: number; processedOn: number; finishedOn: number }>();
    const readEnded = async () => {
      for (const id of small.filter((i) => !ended.has(i))) {
        const j = await queues.scan.getJob(id);
        if (j?.finishedOn && j.processedOn) ended.set(id, { timestamp: j.timestamp, processedOn: j.processedOn, finishedOn: j.finishedOn });
        else if (!j) throw new Error(`P9: job ${id} is gone before it was seen ending`);
      }
      return ended.size === small.length;
    };
    await until('P9: the queue drained', async () => (await readEnded()) && (await drained()), 900_000, 20);
    const seconds = (performance.now() - t0) / 1000;
    const commands = (await redisCommands(o.redis)) - c0;
    const times = small.map((id) => ended.get(id)!);
    const waits = times.map((t) => t.processedOn - t.timestamp);
    const runs = times.map((t) => t.finishedOn - t.processedOn);
    return { waits, waitP99: percentile(waits, 99), jobMs: percentile(runs, 50), floodRate: o.flood / seconds, commandsPerJob: commands / (o.flood + o.small) };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(Object.values(queues).map((q) => q.close()));
  }
}
