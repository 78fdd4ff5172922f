import { Worker, type Job, type MinimalJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { Logger } from 'pino';
import { runJob, type Processor } from './run-job.js';
import type { WorkerDeps } from './deps.js';
import { PROCESSORS } from './registry.js';
import { fullJitterMs, JOB_DEFAULTS, type RetryBackoff } from '../src/jobs/index.js';
import { JOB_DATA_SCHEMAS, JOB_TYPES_OF_QUEUE, QUEUE_NAMES, QUEUES, type JobData, type JobEnvelope, type JobResult, type JobType, type QueueName } from '../src/jobs/index.js';

/** The most attempts a job may have (the contract's 1..10): BullMQ's own stall cap, above what runJob allows. */
const MAX_STALLS = 10;

/**
 * BullMQ's custom backoff: the wait before a job's next attempt, from the
 * delay and cap stored with the job (JobStore or the queue's defaults).
 */
export function retryDelay(attemptsMade: number, _type?: string, _err?: Error, job?: MinimalJob): number {
  const backoff = (job?.opts.backoff ?? {}) as Partial<RetryBackoff>;
  return fullJitterMs(attemptsMade, backoff.delay ?? JOB_DEFAULTS.backoffMs, backoff.maxDelay ?? JOB_DEFAULTS.backoffMaxMs);
}

/** runJob around the registry's processors of the queue's job types. */
function processorFor(queue: QueueName, deps: WorkerDeps) {
  const schemas: Partial<Record<JobType, z.ZodType<JobData>>> = Object.fromEntries(JOB_TYPES_OF_QUEUE[queue].map((type) => [type, JOB_DATA_SCHEMAS[type]]));
  // runJob parsed the input with the schema of ctx.type, which is what the processor of that type takes.
  return runJob(queue, schemas, (ctx) => (PROCESSORS[ctx.type] as Processor<JobData, JobResult>)(ctx), deps);
}

/**
 * A BullMQ worker for one queue at the contract's concurrency. `processor` is
 * the whole job function (runJob around a processor); the benchmark passes
 * runJob around a no-op to measure this wiring.
 */
export function createWorker(
  queue: QueueName,
  processor: (job: Job<JobEnvelope>, token?: string, signal?: AbortSignal) => Promise<Record<string, unknown>>,
  connection: Redis,
  prefix: string,
  logger: Logger,
  /** BullMQ's limiter: at most `max` jobs of the queue start per `duration` ms, across every worker. */
  limiter?: { max: number; duration: number },
  /** lockDuration and stalledInterval (BullMQ's defaults: 30 s). */
  lockMs?: number,
  /** Jobs run at once (QUEUE_CONCURRENCY); the contract's by default. */
  concurrency = QUEUES[queue].concurrency,
): Worker {
  const worker = new Worker(QUEUES[queue].redisName, processor, {
    connection,
    prefix,
    concurrency,
    // A job's retries wait per its own backoff option (full jitter, capped: src/jobs/retry.ts).
    settings: { backoffStrategy: retryDelay },
    ...(limiter ? { limiter } : {}),
    ...(lockMs ? { lockDuration: lockMs, stalledInterval: lockMs } : {}),
    // Stalls count against the job's own attempts (runJob); BullMQ's cap only bounds the most attempts allow.
    maxStalledCount: MAX_STALLS,
  });
  worker.on('error', (err) => logger.error({ queue, err: err.message }, 'worker error'));
  return worker;
}

/** One BullMQ worker per queue, sharing one waiting connection; `concurrency`: QUEUE_CONCURRENCY unless worker:scale set another. */
export function createWorkers(connection: Redis, prefix: string, deps: WorkerDeps, concurrency: Readonly<Record<QueueName, number>> = deps.config.queueConcurrency): Record<QueueName, Worker> {
  const make = (queue: QueueName) => createWorker(queue, processorFor(queue, deps), connection, prefix, deps.logger, deps.config.queueRateLimits[queue], deps.config.workerLockMs, concurrency[queue]);
  return Object.fromEntries(QUEUE_NAMES.map((queue) => [queue, make(queue)])) as Record<QueueName, Worker>;
}
