import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import { createWorkers } from '../workers/index.js';
import type { Config } from './config.js';
import type { Inventory } from './inventory.js';
import { RecordStore } from './records.js';
import { createRedis } from './redis.js';

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
    const workers = createWorkers(connection, config.queuePrefix, { config, inventory: opts.inventory, records, logger });
    app.decorate('workers', workers);

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
      await connection.quit().catch(() => connection.disconnect());
    });
  },
  { name: 'workers', dependencies: ['services'] },
);
