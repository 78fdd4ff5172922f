import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../redis/keys.js';

/** What the product knows about one completed backup archive of a server. */
export type BackupEntry = {
  backupId: string;
  jobId: string;
  serverId: string;
  /** What the archive holds: every file (`full`) or the files changed since `baseId` (`incremental`). */
  type: 'full' | 'incremental';
  /** The backup an incremental one builds on; null for a full one. */
  baseId: string | null;
  compressed: boolean;
  encrypted: boolean;
  /** Key id of the encryption key (see archive-crypto), null when not encrypted. */
  keyId: string | null;
  /** Files in the archive. */
  files: number;
  /** Files left out of an incremental archive because they did not change. */
  skipped: number;
  /** Files of the base backup that are gone from the source. */
  deleted: number;
  sourceBytes: number;
  /** Size of the archive file. */
  bytes: number;
  /** SHA-256 of the archive file as written (and verified by re-reading it). */
  sha256: string;
  archive: string;
  /** The list of every source file (path, size, mtime) at the time of the backup; incremental backups compare with it. */
  manifest: string;
  createdAt: string;
};

/**
 * The completed backups of each server, newest first: a sorted set of ids by
 * completion time and a hash of their entries. Only a backup whose archive
 * was written, renamed into place and verified is in it, and adding the same
 * backupId again (a job run again after a crash) replaces the entry.
 */
export class BackupCatalog {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  private orderKey(serverId: string): string {
    return this.keys.backupOrder(serverId);
  }

  private entriesKey(serverId: string): string {
    return this.keys.backupEntries(serverId);
  }

  async add(entry: BackupEntry): Promise<void> {
    await this.redis
      .multi()
      .hset(this.entriesKey(entry.serverId), entry.backupId, JSON.stringify(entry))
      .zadd(this.orderKey(entry.serverId), Date.parse(entry.createdAt), entry.backupId)
      .exec();
  }

  /** The server's backups, newest first. */
  async list(serverId: string): Promise<BackupEntry[]> {
    const ids = await this.redis.zrevrange(this.orderKey(serverId), 0, -1);
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.entriesKey(serverId), ...ids);
    return raw.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as BackupEntry);
  }

  async get(serverId: string, backupId: string): Promise<BackupEntry | undefined> {
    const raw = await this.redis.hget(this.entriesKey(serverId), backupId);
    return raw === null ? undefined : (JSON.parse(raw) as BackupEntry);
  }

  async remove(serverId: string, backupIds: string[]): Promise<void> {
    if (backupIds.length === 0) return;
    await this.redis
      .multi()
      .hdel(this.entriesKey(serverId), ...backupIds)
      .zrem(this.orderKey(serverId), ...backupIds)
      .exec();
  }
}

/**
 * Which of `entries` (newest first) retention deletes: all but the newest
 * `keep`, except the backups a kept incremental one builds on (restoring it
 * needs them).
 */
export function expiredBackups(entries: readonly BackupEntry[], keep: number): BackupEntry[] {
  const byId = new Map(entries.map((e) => [e.backupId, e]));
  const kept = new Set<string>();
  for (const e of entries.slice(0, keep)) {
    for (let cur: BackupEntry | undefined = e; cur && !kept.has(cur.backupId); cur = cur.baseId ? byId.get(cur.baseId) : undefined) {
      kept.add(cur.backupId);
    }
  }
  return entries.filter((e) => !kept.has(e.backupId));
}
