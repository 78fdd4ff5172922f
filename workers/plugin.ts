import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';
import type { Config } from '../src/config.js';
import type { Inventory } from '../src/inventory.js';
import type { RedisTarget } from '../src/redis/connection.js';
import { startWorkers } from './runtime.js';

/**
 * The workers inside `npm start` (WORKERS=on): started with the app and, on
 * close, given SHUTDOWN_TIMEOUT_MS to finish their active jobs before they
 * are forced down (a forced job is picked up again as stalled by the next
 * worker).
 */
export const workersPlugin = fp(
  async (app: FastifyInstance, opts: { config: Config; inventory: Inventory; redis: RedisTarget }) => {
    const logger = app.log.child({ component: 'worker' }) as unknown as Logger;
    const runtime = await startWorkers({ ...opts, logger });
    app.decorate('workers', runtime.workers);
    app.addHook('onClose', () => runtime.close());
  },
  { name: 'workers', dependencies: ['services'] },
);
