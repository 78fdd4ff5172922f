import type { Socket } from 'node:net';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

export type ConnectionRole = 'producer' | 'worker';

/** A master that Redis Sentinel watches (REDIS_SENTINELS, REDIS_SENTINEL_NAME...). */
export type SentinelTarget = {
  sentinels: ReadonlyArray<{ host: string; port: number }>;
  /** The master's name in the Sentinels' configuration. */
  name: string;
  password?: string | undefined;
  sentinelPassword?: string | undefined;
};

/** A Redis Cluster (REDIS_CLUSTER_NODES): some of its nodes, from which the client learns the others. */
export type ClusterTarget = {
  cluster: ReadonlyArray<{ host: string; port: number }>;
  password?: string | undefined;
};

/** Where Redis is: a REDIS_URL (or socket path), a master behind Sentinels, or a Cluster. */
export type RedisTarget = string | SentinelTarget | ClusterTarget;

export function isSentinelTarget(target: RedisTarget): target is SentinelTarget {
  return typeof target !== 'string' && 'sentinels' in target;
}

export function isClusterTarget(target: RedisTarget): target is ClusterTarget {
  return typeof target !== 'string' && 'cluster' in target;
}

/** The target for logs and messages, without passwords. */
export function describeTarget(target: RedisTarget): string {
  if (typeof target === 'string') return target.replace(/\/\/[^@/]*@/, '//***@');
  if (isClusterTarget(target)) return `redis cluster via ${target.cluster.map((n) => `${n.host}:${n.port}`).join(',')}`;
  return `sentinel master "${target.name}" via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
}

/** Whether a client is an ioredis Cluster (createRedis hands one out typed as Redis). */
export function isCluster(client: Redis): boolean {
  return (client as unknown as { isCluster?: boolean }).isCluster === true;
}

/** The clients of a Cluster's masters, or the client itself: for what must be asked of every node (INFO). */
export function nodesOf(client: Redis): Redis[] {
  return isCluster(client) ? (client as unknown as Cluster).nodes('master') : [client];
}

/**
 * ioredis options for a target. Behind Sentinels the client asks them for the
 * master, follows a failover as soon as they announce it (+switch-master),
 * and reconnects when a demoted master answers READONLY, so writes go to the
 * new master instead of failing until the next reconnect.
 */
export function redisOptionsFor(target: string | SentinelTarget): RedisOptions {
  if (typeof target === 'string') return redisOptionsFromUrl(target);
  return {
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.name,
    role: 'master',
    password: target.password,
    sentinelPassword: target.sentinelPassword,
    failoverDetector: true,
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
}

/**
 * Turn REDIS_URL into ioredis options. Accepts `redis://`, `rediss://`
 * and a unix socket path (`/run/redis.sock` or `unix:///run/redis.sock`).
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  if (url.startsWith('/')) return { path: url };
  if (url.startsWith('unix://')) return { path: url.slice('unix://'.length) };
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL must start with redis://, rediss:// or be a socket path, got "${u.protocol}"`);
  }
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

/**
 * The two kinds of connection of BullMQ's production guide, written once.
 * Each is named `<name>:<pid>` (CLIENT LIST shows which process holds it):
 * producers fail fast so an API call answers 503 instead of hanging; workers
 * wait for Redis forever and pick up where they left off.
 *
 * On a Cluster this is an ioredis Cluster, typed as Redis: it speaks the same
 * commands (routed to the node of each key's slot), the product uses no
 * other, and BullMQ takes either.
 */
/** What a corked connection holds at most before it writes anyway. */
const FLUSH_BYTES = 16 * 1024;

/**
 * The commands a connection sends during one turn of the event loop leave in
 * one write: its socket is corked at the first and uncorked once the turn's
 * I/O callbacks have run (setImmediate). Under load the fifty requests an API
 * process reads in one turn send their Redis commands with one system call
 * instead of fifty (what ioredis's auto-pipelining would do, without building
 * a pipeline per batch); a lone command waits for nothing but the end of its turn, and 16 KiB held
 * leave at once.
 */
function writesPerTurn(redis: Redis): Redis {
  redis.on('connect', () => {
    const socket = redis.stream as (Socket & { jobsapiCorked?: boolean }) | undefined;
    if (!socket || socket.jobsapiCorked) return;
    socket.jobsapiCorked = true;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    let corked = false;
    let scheduled = false;
    const uncork = () => {
      if (corked) socket.uncork();
      corked = false;
    };
    const endOfTurn = () => {
      scheduled = false;
      uncork();
    };
    socket.write = (...args: unknown[]) => {
      if (!corked) {
        corked = true;
        socket.cork();
        if (!scheduled) {
          scheduled = true;
          setImmediate(endOfTurn);
        }
      }
      const ok = write(...args);
      // A big write (a bulk enqueue's slices) leaves at once: Redis starts on it while the next one is encoded.
      if (socket.writableLength >= FLUSH_BYTES) uncork();
      return ok;
    };
  });
  return redis;
}

export function createRedis(target: RedisTarget, role: ConnectionRole, name: string, opts: { commandTimeoutMs?: number } = {}): Redis {
  const retryStrategy = (times: number) => Math.min(times * 200, 2000);
  if (isClusterTarget(target)) return createCluster(target, role, name, retryStrategy, opts.commandTimeoutMs) as unknown as Redis;
  const base = redisOptionsFor(target);
  if (role === 'producer') {
    return writesPerTurn(
      new Redis({
        ...base,
        connectionName: `${name}:${process.pid}`,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        // A frozen Redis (stopped, swapping) keeps its socket open: without a bound a request would wait for ever.
        commandTimeout: opts.commandTimeoutMs,
        retryStrategy,
      }),
    );
  }
  return new Redis({
    ...base,
    connectionName: `${name}:${process.pid}`,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy,
  });
}

function createCluster(target: ClusterTarget, role: ConnectionRole, name: string, retryStrategy: (times: number) => number, commandTimeoutMs?: number): Cluster {
  const options: ClusterOptions = {
    clusterRetryStrategy: retryStrategy,
    enableReadyCheck: true,
    // A slot moved by a resharding or a failover: follow it, a few times, quickly.
    maxRedirections: 16,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      password: target.password,
      connectionName: `${name}:${process.pid}`,
      // Producers fail fast (503), workers wait (BullMQ requires null for them).
      maxRetriesPerRequest: role === 'producer' ? 1 : null,
      ...(role === 'producer' ? { commandTimeout: commandTimeoutMs } : {}),
    },
    ...(role === 'producer' ? { enableOfflineQueue: false } : {}),
  };
  return new Cluster(
    target.cluster.map((n) => ({ host: n.host, port: n.port })),
    options,
  );
}

/** Resolve once the client is ready, or reject after `timeoutMs`. */
export function waitReady(client: Redis, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not become ready within ${timeoutMs} ms (${lastError ?? 'no answer'})`));
    }, timeoutMs);
    let lastError: string | undefined;
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      lastError = err.message;
    };
    const cleanup = () => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
    };
    client.on('ready', onReady);
    client.on('error', onError);
  });
}

/** One field of an `INFO` reply (INFO works where CONFIG is disabled, as on managed Redis). */
export function infoField(info: string, field: string): string | undefined {
  const line = info.split(/\r?\n/).find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim();
}

/** A server whose Redis evicts keys would silently lose jobs: refuse it. */
export async function assertNoEviction(client: Redis): Promise<void> {
  for (const node of nodesOf(client)) await assertNodeNoEviction(node);
}

async function assertNodeNoEviction(client: Redis): Promise<void> {
  const policy = infoField(await client.info('memory'), 'maxmemory_policy');
  if (policy && policy !== 'noeviction') {
    throw new Error(
      `Redis maxmemory-policy is "${policy}"; queues need "noeviction" or Redis may delete jobs under memory pressure. ` +
        'Set it with: redis-cli CONFIG SET maxmemory-policy noeviction (and in redis.conf).',
    );
  }
}

/** Whether `redis` answers PING within `timeoutMs`: a frozen or absent Redis must not hang a readiness probe. */
export function pingWithin(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status !== 'ready') return Promise.resolve(false);
  return Promise.race([
    redis.ping().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref()),
  ]);
}

/** A client for one question: it neither retries nor queues, gives up after `timeoutMs`, and connects on `connect()`. */
export function oneShotClient(options: RedisOptions, timeoutMs: number): Redis {
  const client = new Redis({
    ...options,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  client.on('error', () => {});
  return client;
}

/**
 * The Sentinels cannot lead to a master, or the Cluster nodes to a working
 * Cluster: a setting is wrong (REDIS_SENTINEL_NAME, a node without cluster
 * mode, a password) or nothing answers.
 */
export class RedisSetupError extends Error {
  override name = 'RedisSetupError';
  constructor(
    message: string,
    /** True when a setting is wrong (exit 2), false when the Sentinels are only unreachable. */
    readonly badSetting: boolean,
  ) {
    super(message);
  }
}

/**
 * Ask each Sentinel for the master's address before connecting: ioredis would
 * otherwise retry an unknown master name for ever. Resolves when one knows it.
 */
export async function checkSentinels(target: SentinelTarget, timeoutMs = 2000): Promise<void> {
  let answered = 0;
  for (const { host, port } of target.sentinels) {
    const sentinel = oneShotClient({ host, port, password: target.sentinelPassword }, timeoutMs);
    try {
      await sentinel.connect();
      const addr = await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', target.name);
      answered++;
      if (Array.isArray(addr) && addr.length === 2) return;
    } catch {
      // this one is down or refuses us: ask the next
    } finally {
      sentinel.disconnect();
    }
  }
  const list = target.sentinels.map((s) => `${s.host}:${s.port}`).join(',');
  if (answered > 0) {
    throw new RedisSetupError(`REDIS_SENTINEL_NAME: no Sentinel of ${list} knows a master named "${target.name}" (see "sentinel monitor" in their configuration)`, true);
  }
  throw new RedisSetupError(`REDIS_SENTINELS: none of ${list} answers (wrong address or port, or REDIS_SENTINEL_PASSWORD?)`, false);
}

/**
 * Ask the Cluster nodes about the Cluster before connecting: ioredis would
 * otherwise retry a node without cluster mode, or a Cluster with unserved
 * slots, for ever. Resolves when one node says the Cluster is ok.
 */
export async function checkCluster(target: ClusterTarget, timeoutMs = 2000): Promise<void> {
  const failing: string[] = [];
  for (const { host, port } of target.cluster) {
    const node = oneShotClient({ host, port, password: target.password }, timeoutMs);
    try {
      await node.connect();
      const info = String(await node.call('CLUSTER', 'INFO'));
      if (infoField(info, 'cluster_state') === 'ok') return;
      failing.push(`${host}:${port}`);
    } catch (err) {
      const message = (err as Error).message;
      if (/cluster support disabled/i.test(message)) {
        throw new RedisSetupError(`REDIS_CLUSTER_NODES: ${host}:${port} is a Redis without cluster mode (cluster-enabled no); for a single Redis set REDIS_URL instead`, true);
      }
      if (/NOAUTH|WRONGPASS|invalid password|invalid username/i.test(message)) {
        throw new RedisSetupError(`REDIS_PASSWORD: the Cluster node ${host}:${port} refuses it (${message})`, true);
      }
      // this one is down: ask the next
    } finally {
      node.disconnect();
    }
  }
  const list = target.cluster.map((n) => `${n.host}:${n.port}`).join(',');
  if (failing.length > 0) {
    throw new RedisSetupError(`REDIS_CLUSTER_NODES: the Cluster of ${list} is not ok (cluster_state is not "ok" on ${failing.join(',')}: slots unserved or nodes down)`, false);
  }
  throw new RedisSetupError(`REDIS_CLUSTER_NODES: none of ${list} answers (wrong address or port?)`, false);
}

/** Before connecting: the Sentinels know the master, or the Cluster is ok (a plain Redis needs no question). */
export async function checkTarget(target: RedisTarget): Promise<void> {
  if (isSentinelTarget(target)) await checkSentinels(target);
  else if (isClusterTarget(target)) await checkCluster(target);
}
