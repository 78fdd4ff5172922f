import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { createWorkers } from './create-workers.js';
import type { Config } from '../src/config.js';
import type { Inventory } from '../src/inventory.js';
import { BackupCatalog } from '../src/backups/catalog.js';
import { CancelListener } from '../src/coordination/cancel-listener.js';
import { TenantSlots } from '../src/coordination/tenant-slots.js';
import { RecordStore } from '../src/store/records.js';
import { ServerLocks } from '../src/coordination/server-locks.js';
import { WorkerReporter } from '../src/coordination/worker-reporter.js';
import { createRedis } from '../src/redis/connection.js';
import { redisKeys } from '../src/redis/keys.js';

/**
 * The in-process workers. They use their own connection, which waits for Redis
 * forever instead of failing, so an outage only pauses them. On close, active
 * jobs get SHUTDOWN_TIMEOUT_MS to finish before the workers are forced down
 * (a forced job is picked up again as stalled by the next worker).
 */
export const workersPlugin = fp(
  async (app: FastifyInstance, opts: { config: Config; inventory: Inventory; redisUrl: string }) => {
    const { config } = opts;
    const connection = createRedis(opts.redisUrl, 'worker', 'jobs-api:worker');
    connection.on('error', () => {});
    const logger = app.log.child({ component: 'worker' }) as unknown as Logger;
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
    app.decorate('workers', workers);
    const reporter = new WorkerReporter(connection, config.queuePrefix, workers);
    reporter.start();

    // Cancel requests from any API process reach the worker running the job.
    const subscriber = createRedis(opts.redisUrl, 'worker', 'jobs-api:cancel-listener');
    subscriber.on('error', () => {});
    await cancels.listen(subscriber, (jobId, reason) => {
      for (const w of Object.values(workers)) if (w.cancelJob(jobId, reason)) logger.info({ jobId, reason }, 'job stopped on request');
    });

    app.addHook('onClose', async () => {
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
    });
  },
  { name: 'workers', dependencies: ['services'] },
);
