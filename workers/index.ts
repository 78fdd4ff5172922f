import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { runJob, type WorkerDeps } from '../src/job-runner.js';
import { JOB_DATA_SCHEMAS, QUEUES, type QueueName } from '../src/job-types.js';
import { processBackup } from './backup.js';
import { processScan } from './scan.js';
import { processUpdate } from './update.js';

function processorFor(queue: QueueName, deps: WorkerDeps) {
  switch (queue) {
    case 'backup':
      return runJob(
        'backup',
        { 'backup:manual': JOB_DATA_SCHEMAS['backup:manual'], 'backup:scheduled': JOB_DATA_SCHEMAS['backup:scheduled'] },
        processBackup,
        deps,
      );
    case 'scan':
      return runJob('scan', { 'scan:full': JOB_DATA_SCHEMAS['scan:full'], 'scan:quick': JOB_DATA_SCHEMAS['scan:quick'] }, processScan, deps);
    case 'update':
      return runJob('update', { 'update:server': JOB_DATA_SCHEMAS['update:server'] }, processUpdate, deps);
  }
}

/** One BullMQ worker per queue, at the contract's concurrency, sharing one waiting connection. */
export function createWorkers(connection: Redis, prefix: string, deps: WorkerDeps): Record<QueueName, Worker> {
  const make = (queue: QueueName) => {
    const def = QUEUES[queue];
    const worker = new Worker(def.redisName, processorFor(queue, deps), {
      connection,
      prefix,
      concurrency: def.concurrency,
    });
    worker.on('error', (err) => deps.logger.error({ queue, err: err.message }, 'worker error'));
    return worker;
  };
  return { backup: make('backup'), scan: make('scan'), update: make('update') };
}
