import { hostname } from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../redis/keys.js';

/** What the product knows about one completed restore: a directory on the host of the worker that made it. */
export type RestoreEntry = {
  restoreId: string;
  jobId: string;
  serverId: string;
  backupId: string;
  chain: string[];
  directory: string;
  /** The machine the directory is on (the worker process's host name). */
  host: string;
  files: number;
  bytes: number;
  createdAt: string;
};

/**
 * The completed restores of each server, newest first, and their directories.
 *
 * A restore directory lives on the disk of the worker process that made it,
 * which is not always the process that removes it (an API process, or a
 * restore beyond the retention found by another worker). So removing an entry
 * puts its directory on its host's list of directories to delete, in the same
 * transaction, and each process deletes what that list holds for its own host
 * under its own DATA_DIR/restores: at once when it is the host, otherwise the
 * host's worker processes within a sweep (`deletePending`).
 */
export class RestoreCatalog {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    /** DATA_DIR/restores of this process: the only place it deletes anything. */
    private readonly restoreDir: string,
    /** The machine this process runs on. */
    readonly host = hostname(),
  ) {
    this.keys = redisKeys(prefix);
  }

  /** List a completed restore, and take out of the list those beyond the newest `keep` of its server: they are answered. */
  async add(entry: RestoreEntry, keep: number): Promise<RestoreEntry[]> {
    await this.redis
      .multi()
      .hset(this.keys.restoreEntries(entry.serverId), entry.restoreId, JSON.stringify(entry))
      .zadd(this.keys.restoreOrder(entry.serverId), Date.parse(entry.createdAt), entry.restoreId)
      .exec();
    const beyond = await this.redis.zrevrange(this.keys.restoreOrder(entry.serverId), keep, -1);
    const removed: RestoreEntry[] = [];
    for (const id of beyond) {
      const gone = await this.remove(entry.serverId, id);
      if (gone) removed.push(gone);
    }
    return removed;
  }

  /** The server's restores, newest first. */
  async list(serverId: string): Promise<RestoreEntry[]> {
    const ids = await this.redis.zrevrange(this.keys.restoreOrder(serverId), 0, -1);
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.keys.restoreEntries(serverId), ...ids);
    return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as RestoreEntry);
  }

  /** Take a restore out of the list and have its directory deleted on its host; undefined when it was not listed. */
  async remove(serverId: string, restoreId: string): Promise<RestoreEntry | undefined> {
    const raw = await this.redis.hget(this.keys.restoreEntries(serverId), restoreId);
    if (raw === null) return undefined;
    const entry = JSON.parse(raw) as RestoreEntry;
    const [[, taken] = []] = (await this.redis
      .multi()
      .hdel(this.keys.restoreEntries(serverId), restoreId)
      .zrem(this.keys.restoreOrder(serverId), restoreId)
      .sadd(this.keys.restoreRemovals(entry.host), entry.directory)
      .exec()) ?? [];
    // Another request removed it meanwhile: it answers for it.
    return taken === 1 ? entry : undefined;
  }

  /** Delete the directories listed for this host that are under this process's restore directory; answers which. */
  async deletePending(): Promise<string[]> {
    const key = this.keys.restoreRemovals(this.host);
    const root = path.resolve(this.restoreDir) + path.sep;
    const deleted: string[] = [];
    for (const directory of await this.redis.smembers(key)) {
      // Another deployment on this host (another DATA_DIR) deletes its own.
      if (!path.resolve(directory).startsWith(root) || path.resolve(directory) === root) continue;
      await rm(directory, { recursive: true, force: true });
      await this.redis.srem(key, directory);
      deleted.push(directory);
    }
    return deleted;
  }
}
