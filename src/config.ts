import path from 'node:path';
import { z } from 'zod';
import { JOB_DEFAULTS, QUEUE_NAMES, QUEUES, type JobDefaults, type QueueName } from './jobs/index.js';
import type { ClusterTarget, RedisTarget, SentinelTarget } from './redis/connection.js';

const onOff = z
  .enum(['on', 'off', 'true', 'false', '1', '0'])
  .transform((v) => v === 'on' || v === 'true' || v === '1');

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  // This machine only until the operator says otherwise (the Dockerfile sets 0.0.0.0).
  HOST: z.string().min(1).default('127.0.0.1'),
  REDIS_URL: optionalString,
  REDIS_SENTINELS: optionalString,
  REDIS_CLUSTER_NODES: optionalString,
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, ".", "_" or "-" only').default('mymaster'),
  REDIS_PASSWORD: optionalString,
  REDIS_SENTINEL_PASSWORD: optionalString,
  ENQUEUE_REPLICAS: z.coerce.number().int().min(0).max(16).optional(),
  ENQUEUE_WAIT_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  JWT_SECRET: optionalString,
  JWT_PUBLIC_KEY: optionalString,
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  JWT_CLOCK_TOLERANCE_SEC: z.coerce.number().int().min(0).max(600).default(30),
  SERVERS_FILE: z.string().min(1).default('config/servers.json'),
  DATA_DIR: z.string().min(1).default('./data'),
  BACKUP_DIR: optionalString,
  BACKUP_ENCRYPTION_KEY: optionalString,
  BACKUP_RETENTION: z.coerce.number().int().min(1).max(1000).default(10),
  RESTORE_RETENTION: z.coerce.number().int().min(1).max(1000).default(5),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  WORKERS: onOff.default(true),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." or "-" only')
    .default('bull'),
  API_RATE_LIMIT: z.coerce.number().int().min(0).max(100_000_000).default(6000),
  API_RATE_WINDOW_MS: z.coerce.number().int().min(1000).max(24 * 3600 * 1000).default(60_000),
  QUEUE_RATE_LIMITS: optionalString,
  QUEUE_CONCURRENCY: optionalString,
  JOB_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(JOB_DEFAULTS.attempts),
  RETRY_BACKOFF_MS: z.coerce.number().int().min(100).max(3_600_000).default(JOB_DEFAULTS.backoffMs),
  RETRY_BACKOFF_MAX_MS: z.coerce.number().int().min(100).max(86_400_000).default(JOB_DEFAULTS.backoffMaxMs),
  COMPLETED_RETENTION_SEC: z.coerce.number().int().min(60).max(366 * 86_400).default(JOB_DEFAULTS.completedAgeSec),
  COMPLETED_RETENTION_COUNT: z.coerce.number().int().min(1).max(1_000_000).default(JOB_DEFAULTS.completedCount),
  FAILED_RETENTION_SEC: z.coerce.number().int().min(60).max(366 * 86_400).default(JOB_DEFAULTS.failedAgeSec),
  TENANT_MAX_ACTIVE: z.coerce.number().int().min(1).max(10_000).default(10),
  TENANT_MAX_SHARE: z.coerce.number().gt(0, 'must be more than 0').max(1, 'must be at most 1').default(0.5),
  GLOBAL_MAX_ACTIVE: z.coerce
    .number({ error: 'must be a whole number of jobs (0: no cap)' })
    .int('must be a whole number of jobs (0: no cap)')
    .min(0, 'must be 0 (no cap) or more')
    .max(1_000_000, 'must be at most 1000000')
    .default(0),
  ADMIN_USER: optionalString,
  ADMIN_PASSWORD: optionalString,
  VIEWER_USER: optionalString,
  VIEWER_PASSWORD: optionalString,
  WORKER_LOCK_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  WORKER_HEALTH_PORT: z.coerce.number().int().min(0).max(65_535).optional(),
  SSE_HEARTBEAT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
  REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  TENANT_MAX_STREAMS: z.coerce.number().int().min(1).max(100_000).default(50),
  TENANT_MAX_SCHEDULES: z.coerce.number().int().min(1).max(100_000).default(100),
  TENANT_MAX_QUEUED: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  TENANT_MAX_IDEMPOTENCY_KEYS: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  SCHEDULE_MIN_INTERVAL_SEC: z.coerce.number().int().min(1).max(86_400).default(60),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  WEBHOOK_ALLOW_PRIVATE: onOff.default(false),
  WEBHOOK_BACKOFF_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(10_000),
  TENANT_MAX_WEBHOOKS: z.coerce.number().int().min(1).max(10_000).default(20),
});

export type Config = Readonly<{
  port: number;
  host: string;
  redisUrl: string | undefined;
  /** The master behind REDIS_SENTINELS, when set (REDIS_URL is then not). */
  redisSentinel: SentinelTarget | undefined;
  /** The Redis Cluster of REDIS_CLUSTER_NODES, when set. */
  redisCluster: ClusterTarget | undefined;
  /** Where Redis is, as configured: the Sentinels' master, the Cluster or REDIS_URL; undefined means the embedded Redis. */
  redis: RedisTarget | undefined;
  /** Replicas that must hold an enqueued job before the API answers 202 (WAIT), and how long to wait for them. */
  enqueueReplicas: number;
  enqueueWaitMs: number;
  jwt: Readonly<{
    secret: string | undefined;
    publicKey: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    /** Seconds of clock difference allowed with the token issuer, on exp and nbf. */
    clockToleranceSec: number;
  }>;
  serversFile: string;
  dataDir: string;
  backupDir: string;
  /** The AES-256 key of encrypted backups (32 bytes), or undefined when encryption is not configured. */
  backupKey: Buffer | undefined;
  /** Completed backups kept per server (older archives are deleted). */
  backupRetention: number;
  restoreDir: string;
  /** Completed restores kept per server (older directories are deleted). */
  restoreRetention: number;
  logLevel: string;
  workers: boolean;
  queuePrefix: string;
  shutdownTimeoutMs: number;
  /** How long an API call waits for a Redis command before it answers 503 (a frozen Redis must not hang requests). */
  redisCommandTimeoutMs: number;
  /** How long a client may take to send a whole request (headers and body); a slower one gets 408. */
  requestTimeoutMs: number;
  /** Event streams one tenant may hold open at once in one API process. */
  tenantMaxStreams: number;
  /** Jobs one tenant may have waiting to start, and Idempotency-Key responses it may have stored. */
  tenantMaxQueued: number;
  tenantMaxIdempotencyKeys: number;
  /** Schedules one tenant may have, and the shortest time between two runs of one. */
  schedules: Readonly<{ maxPerTenant: number; minIntervalSec: number }>;
  /** The dashboard's logins; no admin user: no dashboard. */
  dashboard: Readonly<{ adminUser?: string; adminPassword?: string; viewerUser?: string; viewerPassword?: string }>;
  /** BullMQ's lockDuration and stalledInterval: how soon a job whose worker process died runs again. */
  workerLockMs: number;
  /** The worker-only process's /health and /ready port (0: any free port); no health server when unset. */
  workerHealthPort: number | undefined;
  /** How often an idle event stream gets a heartbeat comment. */
  sseHeartbeatMs: number;
  /** Active jobs one tenant may have per queue (never more than half of the queue's capacity). */
  tenantMaxActive: number;
  /** The largest share of a queue's capacity one tenant may use (default half). */
  tenantMaxShare: number;
  /** Jobs active at once over every queue and worker process (0: no cap). */
  globalMaxActive: number;
  /** Requests one tenant may make to /api per window (0: no limit). */
  apiRateLimit: Readonly<{ max: number; windowMs: number }>;
  /**
   * Webhooks: how long a delivery waits for an answer, whether URLs may point at loopback, link-local or
   * private addresses, the first retry's ceiling (exponential with full jitter from there), and webhooks per tenant.
   */
  webhooks: Readonly<{ timeoutMs: number; allowPrivate: boolean; backoffBaseMs: number; maxPerTenant: number }>;
  /** Jobs each queue may start per interval (BullMQ's limiter), by queue; absent: no limit. */
  queueRateLimits: Readonly<Partial<Record<QueueName, { max: number; duration: number }>>>;
  /** Jobs of each queue one worker process runs at once (QUEUE_CONCURRENCY over the contract's 2/5/1). */
  queueConcurrency: Readonly<Record<QueueName, number>>;
  /** Every job's attempts, retry backoff and retention, unless a job's options say otherwise (attempts, backoff). */
  jobDefaults: Readonly<JobDefaults>;
}>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `host:port,host:port` (IPv6 as `[::1]:26379`), or the ConfigError that names the setting and the bad entry. */
export function parseHostPorts(raw: string, setting: string): Array<{ host: string; port: number }> {
  const entries = raw.split(',').map((e) => e.trim()).filter(Boolean);
  if (entries.length === 0) throw new ConfigError(`invalid configuration:\n  ${setting}: no host:port in "${raw}"`);
  return entries.map((entry) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(entry);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65_535) {
      throw new ConfigError(`invalid configuration:\n  ${setting}: "${entry}" is not host:port (e.g. 10.0.0.5:26379, [::1]:26379), in "${raw}"`);
    }
    return { host: (m[1] ?? m[2])!, port };
  });
}

/**
 * BACKUP_ENCRYPTION_KEY: 32 bytes as 64 hex digits or as base64 (44
 * characters). Anything else stops the start, since a backup encrypted with a
 * key nobody can reproduce is a backup lost.
 */
function parseKey(raw: string): Buffer {
  const v = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(v)
    ? Buffer.from(v, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(v)
      ? Buffer.from(v, 'base64')
      : undefined;
  if (key?.length !== 32) {
    throw new ConfigError(
      'invalid configuration:\n  BACKUP_ENCRYPTION_KEY: must be 32 bytes as 64 hex digits or base64 (make one with: openssl rand -hex 32)',
    );
  }
  return key;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * QUEUE_RATE_LIMITS: `queue=max/interval` pairs separated by commas, e.g.
 * `scan=100/1s,backup=5/1m` (interval in ms, s, m or h).
 */
const RATE_LIMIT_PAIR = new RegExp(`^(${QUEUE_NAMES.join('|')})=(\\d{1,9})/(\\d{1,9})(ms|s|m|h)$`);

export function parseQueueRateLimits(raw: string | undefined): Partial<Record<QueueName, { max: number; duration: number }>> {
  const out: Partial<Record<QueueName, { max: number; duration: number }>> = {};
  if (!raw) return out;
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = RATE_LIMIT_PAIR.exec(part);
    if (!m || Number(m[2]) < 1 || Number(m[3]) < 1) {
      throw new ConfigError(
        `invalid configuration:\n  QUEUE_RATE_LIMITS: "${part}" should be queue=max/interval, e.g. scan=100/1s or backup=5/1m (queues: ${QUEUE_NAMES.join(', ')})`,
      );
    }
    out[m[1] as QueueName] = { max: Number(m[2]), duration: Number(m[3]) * UNIT_MS[m[4]!]! };
  }
  return out;
}

const CONCURRENCY_PAIR = new RegExp(`^(${QUEUE_NAMES.join('|')})=(\\d{1,4})$`);

/** QUEUE_CONCURRENCY: `queue=n` pairs separated by commas (`scan=10,backup=4`); a queue not named keeps the contract's. */
export function parseQueueConcurrency(raw: string | undefined): Record<QueueName, number> {
  const out = Object.fromEntries(QUEUE_NAMES.map((q) => [q, QUEUES[q].concurrency])) as Record<QueueName, number>;
  if (!raw) return out;
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = CONCURRENCY_PAIR.exec(part);
    const n = m ? Number(m[2]) : 0;
    if (!m || n < 1 || n > 1000) {
      throw new ConfigError(
        `invalid configuration:\n  QUEUE_CONCURRENCY: "${part}" should be queue=n with n from 1 to 1000, e.g. scan=10,backup=4 (queues: ${QUEUE_NAMES.join(', ')})`,
      );
    }
    out[m[1] as QueueName] = n;
  }
  return out;
}

/** Parse the environment once into a frozen, typed configuration. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if ((e.ADMIN_USER === undefined) !== (e.ADMIN_PASSWORD === undefined) || (e.VIEWER_USER === undefined) !== (e.VIEWER_PASSWORD === undefined)) {
    throw new ConfigError('invalid configuration:\n  ADMIN_USER/ADMIN_PASSWORD and VIEWER_USER/VIEWER_PASSWORD: set both of a pair, or neither');
  }
  if (e.ADMIN_PASSWORD !== undefined && e.ADMIN_PASSWORD.length < 12) {
    throw new ConfigError('invalid configuration:\n  ADMIN_PASSWORD: at least 12 characters (the dashboard can act on every job)');
  }
  if (e.VIEWER_PASSWORD !== undefined && e.VIEWER_PASSWORD.length < 12) {
    throw new ConfigError('invalid configuration:\n  VIEWER_PASSWORD: at least 12 characters (the dashboard shows every tenant\'s jobs and their data)');
  }
  const targets = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((k) => e[k] !== undefined);
  if (targets.length > 1) {
    throw new ConfigError(`invalid configuration:\n  ${targets.join(' and ')}: set one of them (REDIS_URL for one Redis, REDIS_SENTINELS for a master behind Sentinels, REDIS_CLUSTER_NODES for a Redis Cluster)`);
  }
  const redisCluster: ClusterTarget | undefined =
    e.REDIS_CLUSTER_NODES === undefined ? undefined : { cluster: parseHostPorts(e.REDIS_CLUSTER_NODES, 'REDIS_CLUSTER_NODES'), password: e.REDIS_PASSWORD };
  if (redisCluster && (e.ENQUEUE_REPLICAS ?? 0) > 0) {
    // WAIT counts the replicas of the node it is sent to; a 202 spans several nodes' slots.
    throw new ConfigError(
      'invalid configuration:\n  ENQUEUE_REPLICAS: not supported with REDIS_CLUSTER_NODES (WAIT confirms one node\'s replicas; use min-replicas-to-write on the Cluster nodes instead)',
    );
  }
  const redisSentinel: SentinelTarget | undefined =
    e.REDIS_SENTINELS === undefined
      ? undefined
      : {
          sentinels: parseHostPorts(e.REDIS_SENTINELS, 'REDIS_SENTINELS'),
          name: e.REDIS_SENTINEL_NAME,
          password: e.REDIS_PASSWORD,
          sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
        };
  if (e.RETRY_BACKOFF_MAX_MS < e.RETRY_BACKOFF_MS) {
    throw new ConfigError(
      `invalid configuration:\n  RETRY_BACKOFF_MAX_MS: ${e.RETRY_BACKOFF_MAX_MS} is below RETRY_BACKOFF_MS (${e.RETRY_BACKOFF_MS}): the cap of the retry waits must be at least the first one's ceiling`,
    );
  }
  const dataDir = path.resolve(e.DATA_DIR);
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisSentinel: redisSentinel ? Object.freeze(redisSentinel) : undefined,
    redisCluster: redisCluster ? Object.freeze(redisCluster) : undefined,
    redis: redisSentinel ?? redisCluster ?? e.REDIS_URL,
    // Behind Sentinels a replica is there to fail over to: a 202 waits until it holds the job.
    enqueueReplicas: e.ENQUEUE_REPLICAS ?? (redisSentinel ? 1 : 0),
    enqueueWaitMs: e.ENQUEUE_WAIT_MS,
    jwt: Object.freeze({
      secret: e.JWT_SECRET,
      publicKey: e.JWT_PUBLIC_KEY,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      clockToleranceSec: e.JWT_CLOCK_TOLERANCE_SEC,
    }),
    serversFile: path.resolve(e.SERVERS_FILE),
    dataDir,
    backupDir: e.BACKUP_DIR ? path.resolve(e.BACKUP_DIR) : path.join(dataDir, 'backups'),
    backupKey: e.BACKUP_ENCRYPTION_KEY === undefined ? undefined : parseKey(e.BACKUP_ENCRYPTION_KEY),
    backupRetention: e.BACKUP_RETENTION,
    restoreDir: path.join(dataDir, 'restores'),
    restoreRetention: e.RESTORE_RETENTION,
    logLevel: e.LOG_LEVEL,
    workers: e.WORKERS,
    queuePrefix: e.QUEUE_PREFIX,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    tenantMaxStreams: e.TENANT_MAX_STREAMS,
    tenantMaxQueued: e.TENANT_MAX_QUEUED,
    tenantMaxIdempotencyKeys: e.TENANT_MAX_IDEMPOTENCY_KEYS,
    schedules: Object.freeze({ maxPerTenant: e.TENANT_MAX_SCHEDULES, minIntervalSec: e.SCHEDULE_MIN_INTERVAL_SEC }),
    sseHeartbeatMs: e.SSE_HEARTBEAT_MS,
    workerLockMs: e.WORKER_LOCK_MS,
    workerHealthPort: e.WORKER_HEALTH_PORT,
    dashboard: Object.freeze({ adminUser: e.ADMIN_USER, adminPassword: e.ADMIN_PASSWORD, viewerUser: e.VIEWER_USER, viewerPassword: e.VIEWER_PASSWORD }),
    tenantMaxActive: e.TENANT_MAX_ACTIVE,
    tenantMaxShare: e.TENANT_MAX_SHARE,
    globalMaxActive: e.GLOBAL_MAX_ACTIVE,
    apiRateLimit: Object.freeze({ max: e.API_RATE_LIMIT, windowMs: e.API_RATE_WINDOW_MS }),
    queueRateLimits: Object.freeze(parseQueueRateLimits(e.QUEUE_RATE_LIMITS)),
    queueConcurrency: Object.freeze(parseQueueConcurrency(e.QUEUE_CONCURRENCY)),
    jobDefaults: Object.freeze({
      attempts: e.JOB_ATTEMPTS,
      backoffMs: e.RETRY_BACKOFF_MS,
      backoffMaxMs: e.RETRY_BACKOFF_MAX_MS,
      completedAgeSec: e.COMPLETED_RETENTION_SEC,
      completedCount: e.COMPLETED_RETENTION_COUNT,
      failedAgeSec: e.FAILED_RETENTION_SEC,
    }),
    webhooks: Object.freeze({
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
      backoffBaseMs: e.WEBHOOK_BACKOFF_BASE_MS,
      maxPerTenant: e.TENANT_MAX_WEBHOOKS,
    }),
  });
}
