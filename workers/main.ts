import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from '../src/config.js';
import { InventoryError, loadInventory } from '../src/inventory.js';
import { stopOnSignals } from '../src/lifecycle.js';
import { createLogger } from '../src/logger.js';
import { checkTarget, describeTarget, RedisSetupError, type RedisTarget } from '../src/redis/connection.js';
import { findEmbeddedRedis } from '../src/redis/embedded.js';
import { startHealthServer } from './health-server.js';
import { startWorkers, type WorkerRuntime } from './runtime.js';

/** Exit code when there is no Redis to work on: a setting is missing, not a crash. */
const EXIT_NO_REDIS = 2;

class NoRedisError extends Error {}

/** REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES, or else the embedded Redis of an `npm start` on the same DATA_DIR. */
async function redisTarget(config: Config): Promise<RedisTarget> {
  if (config.redis) return config.redis;
  const embedded = await findEmbeddedRedis(path.join(config.dataDir, 'redis'));
  if (embedded) return embedded;
  throw new NoRedisError(
    [
      `no Redis to work on: none of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES is set, and no \`npm start\` runs an embedded Redis on DATA_DIR=${config.dataDir}.`,
      'Either:',
      '  - point the worker at your Redis: REDIS_URL=redis://host:6379 npm run worker',
      '  - or start the API first (npm start) and run the worker with the same DATA_DIR',
    ].join('\n'),
  );
}

/** `npm run worker`: the workers of every queue, no HTTP API, its own health server when WORKER_HEALTH_PORT is set. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`jobs-api worker: cannot start: ${err.message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel).child({ component: 'worker' }) as Logger;
  let runtime: WorkerRuntime | undefined;
  let health: FastifyInstance | undefined;
  try {
    const inventory = loadInventory(config.serversFile);
    const redis = await redisTarget(config);
    await checkTarget(redis);
    runtime = await startWorkers({ config, inventory, redis, logger });
    if (config.workerHealthPort !== undefined) health = await startHealthServer(runtime, { port: config.workerHealthPort, host: config.host });
    const started = runtime;
    stopOnSignals(logger, config.shutdownTimeoutMs + 10_000, async () => {
      await started.close();
      await health?.close();
      logger.info('stopped');
    });
    const address = health?.server.address();
    logger.info(
      {
        redis: describeTarget(redis),
        queues: config.queueConcurrency,
        healthPort: address && typeof address === 'object' ? address.port : null,
      },
      'worker process started',
    );
  } catch (err) {
    await runtime?.close().catch(() => {});
    await health?.close().catch(() => {});
    if (err instanceof NoRedisError) {
      process.stderr.write(`jobs-api worker: ${err.message}\n`);
      process.exit(EXIT_NO_REDIS);
    }
    const badSetting = err instanceof InventoryError || (err instanceof RedisSetupError && err.badSetting);
    const known = badSetting || err instanceof RedisSetupError;
    process.stderr.write(`jobs-api worker: cannot start: ${known ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exit(badSetting ? 2 : 1);
  }
}

void main();
