import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, queueOfJobId, type QueueName } from '../jobs/index.js';
import { isCluster } from './connection.js';
import { redisKeys, type RedisKeys } from './keys.js';

/** The layout of keys.ts (queue names as hash tags); what an earlier version left has none. */
export const KEY_SCHEMA = '2';

/** How long the migration lock lives without renewal; it is renewed (every RENEW_EVERY keys) while the migration works. */
const LOCK_MS = 30_000;
const RENEW_EVERY = 100;
/** How long a process waits for another one's migration before it gives up. */
const WAIT_MS = 10 * 60_000;

export type MigrationReport = { renamed: number; merged: number; indexEntries: number; dropped: number };

/**
 * Move the keys of an earlier version (queues named `scan-queue`, product keys
 * under `bull:jobsapi:` without hash tags) to the layout of keys.ts, once, at
 * start, before any queue or worker touches Redis. Every process of the new
 * version runs it; the first takes a lock and the others wait for it. It is
 * idempotent: a migration cut short (a crash) is finished by the next start,
 * and a key whose new name already exists is merged into it, not lost.
 *
 * An earlier version's process still running (a rolling upgrade) keeps
 * writing under the old names: while any of them exists the migration runs
 * again (each start, and the API checks every minute, see services.ts), so
 * what it wrote moves too.
 *
 * Earlier versions never ran on Redis Cluster, so a Cluster has nothing to
 * move (and its keys of one old name could not be renamed across slots).
 * Answers what it moved, or undefined when there was nothing to do.
 */
export async function migrateKeys(redis: Redis, prefix: string): Promise<MigrationReport | undefined> {
  if (isCluster(redis)) return undefined;
  const keys = redisKeys(prefix);
  const deadline = Date.now() + WAIT_MS;
  const token = randomBytes(8).toString('hex');
  for (;;) {
    if ((await redis.get(keys.schema)) === KEY_SCHEMA && !(await oldLayoutPresent(redis, prefix))) return undefined;
    if ((await redis.set(keys.migrationLock, token, 'PX', LOCK_MS, 'NX')) === 'OK') break;
    if (Date.now() > deadline) throw new Error(`another process has held the key migration lock (${keys.migrationLock}) for ${WAIT_MS / 60_000} minutes`);
    await new Promise((r) => setTimeout(r, 200));
  }
  try {
    const renew = async () => {
      if ((await redis.eval(RENEW_LUA, 1, keys.migrationLock, token, LOCK_MS)) !== 1) {
        throw new Error(`the key migration lost its lock (${keys.migrationLock}); the next start finishes it`);
      }
    };
    const report = await new Migration(redis, prefix, keys, renew).run();
    await redis.set(keys.schema, KEY_SCHEMA);
    return report.renamed + report.merged + report.indexEntries + report.dropped > 0 ? report : undefined;
  } finally {
    if ((await redis.get(keys.migrationLock)) === token) await redis.del(keys.migrationLock);
  }
}

/** Renew the lock only while it is ours. */
const RENEW_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/** Whether a key of the earlier layout exists: one a running process of that version writes on every enqueue or run. */
async function oldLayoutPresent(redis: Redis, prefix: string): Promise<boolean> {
  const old = QUEUE_NAMES.flatMap((q) => ['meta', 'events', 'wait', 'prioritized', 'delayed', 'active', 'completed', 'failed'].map((k) => `${prefix}:${q}-queue:${k}`));
  return (await redis.exists(...old, `${prefix}:jobsapi:idx:all`)) > 0;
}

/** BullMQ's keys a worker takes job ids from (and the marker that wakes it). */
const DISPATCH_KEYS = new Set(['wait', 'paused', 'prioritized', 'delayed', 'marker', 'pc']);

class Migration {
  private readonly report: MigrationReport = { renamed: 0, merged: 0, indexEntries: 0, dropped: 0 };
  private steps = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly keys: RedisKeys,
    private readonly renewLock: () => Promise<unknown>,
  ) {}

  /** One walk over the prefix's keys (the new names, which all carry a `{`, are passed over). */
  async run(): Promise<MigrationReport> {
    const ns = `${this.prefix}:jobsapi:`;
    const queuePrefixes = QUEUE_NAMES.map((queue) => [queue, `${this.prefix}:${queue}-queue:`] as const);
    // The sets a worker takes jobs from move last: a worker of this version
    // that finds a job id there must find the job's hash under the new name.
    const dispatch: Array<[string, string]> = [];
    await this.each(`${this.prefix}:*`, async (key) => {
      // BullMQ's keys: `bull:scan-queue:<rest>` -> `bull:{scan}:<rest>`.
      for (const [queue, old] of queuePrefixes) {
        if (!key.startsWith(old)) continue;
        const rest = key.slice(old.length);
        if (DISPATCH_KEYS.has(rest)) dispatch.push([key, this.keys.queue(queue) + rest]);
        else await this.move(key, this.keys.queue(queue) + rest);
        return;
      }
      if (key.startsWith(ns) && !key.includes('{', ns.length)) return this.moveProductKey(key, key.slice(ns.length));
    });
    for (const [from, to] of dispatch) await this.move(from, to);
    return this.report;
  }

  /** Call `fn` for every key matching `pattern` (SCAN: keys renamed meanwhile no longer match, and are not seen twice). */
  private async each(pattern: string, fn: (key: string) => Promise<void>): Promise<void> {
    let cursor = '0';
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of found) {
        await fn(key);
        if (++this.steps % RENEW_EVERY === 0) await this.renewLock();
      }
    } while (cursor !== '0');
  }

  private async moveProductKey(key: string, rest: string): Promise<void> {
    const k = this.keys;
    const parts = rest.split(':');
    const asQueue = (q: string | undefined): QueueName | undefined => (QUEUE_NAMES as readonly string[]).includes(q ?? '') ? (q as QueueName) : undefined;
    const [head] = parts;
    if (rest === 'idx:all') return this.splitIndex(key, undefined);
    if (rest.startsWith('idx:tenant:')) return this.splitIndex(key, rest.slice('idx:tenant:'.length));
    // Rebuilt per queue by splitting the tenant indexes; worker entries come back within seconds.
    if (rest === 'tenants' || head === 'workers') return this.drop(key);
    // Untagged in both layouts.
    if (head === 'idem' || head === 'ratelimit') return;
    if (head === 'record' && asQueue(parts[1])) return this.move(key, k.record(asQueue(parts[1])!, parts.slice(2).join(':')));
    if (head === 'server' && asQueue(parts.at(-1))) return this.move(key, k.serverRecords(asQueue(parts.at(-1))!, parts.slice(1, -1).join(':')));
    if (head === 'backups' && parts.at(-1) === 'order') return this.move(key, k.backupOrder(parts.slice(1, -1).join(':')));
    if (head === 'backups' && parts.at(-1) === 'entries') return this.move(key, k.backupEntries(parts.slice(1, -1).join(':')));
    if (head === 'cancel' && parts.length > 1) return this.move(key, k.cancelRequest(parts.slice(1).join(':')));
    if (head === 'replayed') return this.move(key, k.replayed(parts.slice(1).join(':')));
    if (head === 'lock' && asQueue(parts[1])) return this.move(key, k.serverLock(asQueue(parts[1])!, parts.slice(2).join(':')));
    if (head === 'slots' && asQueue(parts[1])) return this.move(key, k.tenantSlots(asQueue(parts[1])!, parts.slice(2).join(':')));
    if (head === 'tenant-limit') return this.copyToEachQueue(key, parts.slice(1).join(':'));
    // A key this version does not know: left where it is.
  }

  /** Rename, keeping the time to live; when the new name exists already (a migration cut short), merge into it. */
  private async move(from: string, to: string): Promise<void> {
    let renamed: number;
    try {
      renamed = await this.redis.renamenx(from, to);
    } catch (err) {
      // Gone since SCAN listed it (a lock or a marker whose time ran out): nothing to move.
      if (/no such key/i.test((err as Error).message)) return;
      throw err;
    }
    if (renamed === 1) {
      this.report.renamed++;
      return;
    }
    const r = this.redis;
    switch (await r.type(from)) {
      case 'zset':
        await r.zunionstore(to, 2, to, from, 'AGGREGATE', 'MAX');
        break;
      case 'set':
        await r.sunionstore(to, to, from);
        break;
      case 'hash': {
        const fields = await r.hgetall(from);
        for (const [field, value] of Object.entries(fields)) await r.hsetnx(to, field, value);
        break;
      }
      case 'list': {
        const items = await r.lrange(from, 0, -1);
        if (items.length > 0) await r.rpush(to, ...items);
        break;
      }
      default:
      // a string or stream already written under the new name is the newer one
    }
    await r.del(from);
    this.report.merged++;
  }

  /** An index over every queue (all jobs, or a tenant's) becomes one per queue, by the queue each job id names. */
  private async splitIndex(key: string, tenant: string | undefined): Promise<void> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.zscan(key, cursor, 'COUNT', 1000);
      cursor = next;
      const perQueue = new Map<QueueName, Array<string>>();
      for (let i = 0; i < flat.length; i += 2) {
        const queue = queueOfJobId(flat[i]!);
        if (!queue) continue;
        let members = perQueue.get(queue);
        if (!members) perQueue.set(queue, (members = []));
        members.push(flat[i + 1]!, flat[i]!);
      }
      for (const [queue, members] of perQueue) {
        await this.redis.zadd(tenant === undefined ? this.keys.index.all(queue) : this.keys.index.tenant(queue, tenant), ...members);
        if (tenant !== undefined) await this.redis.sadd(this.keys.index.tenants(queue), tenant);
        this.report.indexEntries += members.length / 2;
      }
      await this.renewLock();
    } while (cursor !== '0');
    await this.redis.del(key);
  }

  /** A tenant's limit override: one copy per queue, with what is left of its time. */
  private async copyToEachQueue(key: string, tenant: string): Promise<void> {
    const [value, ttl] = await Promise.all([this.redis.get(key), this.redis.pttl(key)]);
    if (value !== null) {
      for (const queue of QUEUE_NAMES) {
        const to = this.keys.tenantLimit(queue, tenant);
        if (ttl > 0) await this.redis.set(to, value, 'PX', ttl, 'NX');
        else await this.redis.set(to, value, 'NX');
      }
    }
    await this.redis.del(key);
    this.report.renamed++;
  }

  private async drop(key: string): Promise<void> {
    await this.redis.del(key);
    this.report.dropped++;
  }
}
