import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { Logger } from 'pino';
import { runJob, type JobContext, type WorkerDeps } from './run-job.js';
import { JOB_DATA_SCHEMAS, QUEUES, type BackupData, type JobEnvelope, type QueueName, type RestoreData } from '../src/jobs/index.js';
import { processBackup } from './backup.js';
import { processRestore } from './restore.js';
import { processScan } from './scan.js';
import { processUpdate } from './update.js';

function processorFor(queue: QueueName, deps: WorkerDeps) {
  switch (queue) {
    case 'backup':
      return runJob(
        'backup',
        {
          'backup:manual': JOB_DATA_SCHEMAS['backup:manual'] as z.ZodType<BackupData | RestoreData>,
          'backup:scheduled': JOB_DATA_SCHEMAS['backup:scheduled'],
          'backup:restore': JOB_DATA_SCHEMAS['backup:restore'],
        },
        (ctx) =>
          ctx.type === 'backup:restore'
            ? processRestore(ctx as JobContext<RestoreData>)
            : processBackup(ctx as JobContext<BackupData>),
        deps,
      );
    case 'scan':
      return runJob('scan', { 'scan:full': JOB_DATA_SCHEMAS['scan:full'], 'scan:quick': JOB_DATA_SCHEMAS['scan:quick'] }, processScan, deps);
    case 'update':
      return runJob('update', { 'update:server': JOB_DATA_SCHEMAS['update:server'] }, processUpdate, deps);
  }
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
): Worker {
  const worker = new Worker(QUEUES[queue].redisName, processor, {
    connection,
    prefix,
    concurrency: QUEUES[queue].concurrency,
    ...(limiter ? { limiter } : {}),
    ...(lockMs ? { lockDuration: lockMs, stalledInterval: lockMs } : {}),
  });
  worker.on('error', (err) => logger.error({ queue, err: err.message }, 'worker error'));
  return worker;
}

/** One BullMQ worker per queue, sharing one waiting connection. */
export function createWorkers(connection: Redis, prefix: string, deps: WorkerDeps): Record<QueueName, Worker> {
  const make = (queue: QueueName) => createWorker(queue, processorFor(queue, deps), connection, prefix, deps.logger, deps.config.queueRateLimits[queue], deps.config.workerLockMs);
  return { backup: make('backup'), scan: make('scan'), update: make('update') };
}
