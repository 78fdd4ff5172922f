import path from 'node:path';
import { buildApp } from './app.js';
import { resolveJwtKey, signToken, type JwtKey } from './http/auth.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { DASHBOARD_PATH } from './plugins/dashboard.js';
import { RedisSetupError } from './redis/connection.js';
import { DataDirInUseError, RedisServerMissingError, startEmbeddedRedis, type EmbeddedRedis } from './redis/embedded.js';
import { InventoryError, loadInventory } from './inventory.js';
import { stopOnSignals } from './lifecycle.js';
import { createLogger } from './logger.js';

const STARTUP_TOKEN_TTL_SECONDS = 24 * 3600;

/** Where to go next, printed once the server listens; with a generated secret, the token (first start only) or how to make one. */
function banner(config: Config, port: number, jwtKey: JwtKey): string {
  const loopback = ['127.0.0.1', '::1', 'localhost', '0.0.0.0', '::'].includes(config.host);
  const base = `http://${loopback ? 'localhost' : config.host}:${port}`;
  const lines = [
    '',
    `Jobs API on ${base}${config.host === '127.0.0.1' ? '  (this machine only: set HOST=0.0.0.0 to listen on every interface)' : ''}`,
    `  API docs    ${base}/docs`,
    `  dashboard   ${config.dashboard.adminUser ? `${base}${DASHBOARD_PATH}` : `${base}${DASHBOARD_PATH}  (set ADMIN_USER and ADMIN_PASSWORD to turn it on)`}`,
    `  live page   ${base}/ui/jobs/<jobId>#token=$TOKEN   (a job's state, progress and log as they happen)`,
    `  jobsctl     JOBS_API_URL=${base} JOBS_API_TOKEN=$TOKEN npm run jobsctl -- job:list`,
    '',
  ];
  // A token is printed once, when the secret is made (the first start): logs outlive the 24 hours it is valid.
  if (jwtKey.generated) {
    const token = signToken({ sub: 'admin', tenant: 'default', scope: 'admin' }, jwtKey, STARTUP_TOKEN_TTL_SECONDS);
    lines.push('An admin token for the next 24 hours (npm run token -- --help for more):', '', `export TOKEN=${token}`, '');
  } else if (jwtKey.secretFile) {
    lines.push(`Make a token with: npm run token -- --sub me --scope admin   (the secret is in ${jwtKey.secretFile})`, '');
  } else {
    lines.push(jwtKey.algorithm === 'HS256' ? 'Make a token with: JWT_SECRET=... npm run token -- --sub me --scope admin' : 'Tokens come from the issuer whose key JWT_PUBLIC_KEY holds.', '');
  }
  return `${lines.join('\n')}\n`;
}

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
    const port = (app.server.address() as { port: number } | null)?.port ?? config.port;
    if (jwtKey.secretFile) logger.warn({ secretFile: jwtKey.secretFile }, 'JWT_SECRET is not set: using the secret generated in DATA_DIR');
    process.stdout.write(banner(config, port, jwtKey));
  } catch (err) {
    await embedded?.stop().catch(() => {});
    const badSetting =
      err instanceof ConfigError || err instanceof InventoryError || err instanceof DataDirInUseError || (err instanceof RedisSetupError && err.badSetting);
    const known = badSetting || err instanceof RedisServerMissingError || err instanceof RedisSetupError;
    process.stderr.write(`jobs-api: cannot start: ${known ? err.message : ((err as Error).stack ?? String(err))}\n`);
    // 2: a setting is wrong (the message names it); 1: anything else.
    process.exit(badSetting ? 2 : 1);
  }
}

void main();
