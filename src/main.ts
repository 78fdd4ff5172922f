import path from 'node:path';
import { buildApp } from './app.js';
import { resolveJwtKey, signToken } from './http/auth.js';
import { ConfigError, loadConfig } from './config.js';
import { RedisSetupError } from './redis/connection.js';
import { RedisServerMissingError, startEmbeddedRedis, type EmbeddedRedis } from './redis/embedded.js';
import { InventoryError, loadInventory } from './inventory.js';
import { stopOnSignals } from './lifecycle.js';
import { createLogger } from './logger.js';

const STARTUP_TOKEN_TTL_SECONDS = 24 * 3600;

/** Start the API and its workers; on SIGTERM, SIGINT or SIGHUP close everything in order (src/lifecycle.ts). */
async function main(): Promise<void> {
  let embedded: EmbeddedRedis | undefined;
  try {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const inventory = loadInventory(config.serversFile);
    const jwtKey = resolveJwtKey(config);

    let redis = config.redis;
    if (!redis) {
      embedded = await startEmbeddedRedis(path.join(config.dataDir, 'redis'));
      redis = embedded.url;
      logger.info({ redis: embedded.url, pid: embedded.pid }, 'embedded redis-server started (set REDIS_URL to use your own)');
    }

    const app = await buildApp(config, { inventory, jwtKey, redis, logger });
    const running = embedded;
    stopOnSignals(logger, config.shutdownTimeoutMs + 10_000, async () => {
      await app.close();
      await running?.stop();
      logger.info('stopped');
    });
    await app.listen({ port: config.port, host: config.host });

    if (jwtKey.secretFile) {
      logger.warn({ secretFile: jwtKey.secretFile }, 'JWT_SECRET is not set: using the secret generated in DATA_DIR');
      const port = (app.server.address() as { port: number } | null)?.port ?? config.port;
      // A token is printed once, when the secret is made (the first start): logs outlive the 24 hours it is valid.
      const tokenLines = jwtKey.generated
        ? `An admin token for the next 24 hours (npm run token -- --help for more):\n\nexport TOKEN=${signToken({ sub: 'admin', tenant: 'default', scope: 'admin' }, jwtKey, STARTUP_TOKEN_TTL_SECONDS)}\n\n`
        : `Make a token with: npm run token -- --sub me --scope admin   (the secret is in ${jwtKey.secretFile})\n\n`;
      process.stdout.write(`\nJobs API on http://localhost:${port}  (docs: http://localhost:${port}/docs)\n${tokenLines}`);
    }
  } catch (err) {
    await embedded?.stop().catch(() => {});
    const badSetting = err instanceof ConfigError || err instanceof InventoryError || (err instanceof RedisSetupError && err.badSetting);
    const known = badSetting || err instanceof RedisServerMissingError || err instanceof RedisSetupError;
    process.stderr.write(`jobs-api: cannot start: ${known ? err.message : ((err as Error).stack ?? String(err))}\n`);
    // 2: a setting is wrong (the message names it); 1: anything else.
    process.exit(badSetting ? 2 : 1);
  }
}

void main();
