import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createWorkers } from './create-workers.js';
import type { Config } from '../src/config.js';
import type { Inventory } from '../src/inventory.js';
import type { QueueName } from '../src/jobs/index.js';
import { BackupCatalog } from '../src/backups/catalog.js';
import { CancelListener } from '../src/coordination/cancel-listener.js';
import { TenantSlots } from '../src/coordination/tenant-slots.js';
import { RecordStore } from '../src/store/records.js';
import { ServerLocks } from '../src/coordination/server-locks.js';
import { WorkerReporter } from '../src/coordination/worker-reporter.js';
import { createRedis, type RedisTarget } from '../src/redis/connection.js';
import { redisKeys } from '../src/redis/keys.js';

/** The workers of one process, inside `npm start` or alone (`npm run worker`). */
export type WorkerRuntime = {
  workers: Record<QueueName, Worker>;
  /** The workers' own connection: it waits for Redis instead of failing. */
  connection: Redis;
  /** Let active jobs finish (up to SHUTDOWN_TIMEOUT_MS), then close the workers and their connections. */
  close(): Promise<void>;
};

/**
 * Start one BullMQ worker per queue on connections that wait for Redis
 * forever, so an outage only pauses them; report to the worker registry and
 * listen for cancel requests from every API process.
 */
export async function startWorkers(opts: { config: Config; inventory: Inventory; redis: RedisTarget; logger: Logger }): Promise<WorkerRuntime> {
  const { config, logger } = opts;
  const connection = createRedis(opts.redis, 'worker', 'jobs-api:worker');
  connection.on('error', () => {});
  const records = new RecordStore(connection, config.queuePrefix);
  const locks = new ServerLocks(connection, config.queuePrefix, (key) => logger.warn({ key }, 'a server lock expired while its job still ran'));
  const cancels = new CancelListener(connection, config.queuePrefix);
  const logChannel = redisKeys(config.queuePrefix).jobLogChannel;
  const catalog = new BackupCatalog(connection, config.queuePrefix);
  const workers = createWorkers(connection, config.queuePrefix, {
    config,
    inventory: opts.inventory,
    records,
    logger,
    locks,
    cancels,
    catalog,
    redis: connection,
    slots: new TenantSlots(connection, config.queuePrefix, config.tenantMaxActive, config.tenantMaxShare),
    notifyLog: (jobId) => connection.publish(logChannel, jobId),
  });
  const reporter = new WorkerReporter(connection, config.queuePrefix, workers);
  reporter.start();

  // Cancel requests from any API process reach the worker running the job.
  const subscriber = createRedis(opts.redis, 'worker', 'jobs-api:cancel-listener');
  subscriber.on('error', () => {});
  await cancels.listen(subscriber, (jobId, reason) => {
    for (const w of Object.values(workers)) if (w.cancelJob(jobId, reason)) logger.info({ jobId, reason }, 'job stopped on request');
  });

  const close = async () => {
    const all = Object.values(workers);
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs);
    });
    const graceful = Promise.all(all.map((w) => w.close())).then(() => 'done' as const);
    if ((await Promise.race([graceful, forced])) === 'timeout') {
      logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'active jobs did not finish in time; closing workers anyway');
      await Promise.all(all.map((w) => w.close(true)));
    }
    clearTimeout(timer);
    await reporter.stop();
    await subscriber.quit().catch(() => subscriber.disconnect());
    await connection.quit().catch(() => connection.disconnect());
  };
  return { workers, connection, close };
}
