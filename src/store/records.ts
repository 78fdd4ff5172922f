import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';

export type RecordKind = QueueName;
export type RecordStatus = 'pending' | 'running' | 'completed' | 'failed';

/**
 * How long a job's record is kept. A completed backup is also in the backup
 * catalog (src/backups/catalog.ts), which lives as long as its archive.
 */
const RECORD_TTL_SECONDS = 8 * 24 * 3600;
/** The newest records of each kind kept per server; older ones are deleted as new ones start. */
export const RECORDS_PER_SERVER = 100;

export type StoredRecord = {
  id: string;
  jobId: string;
  status: RecordStatus;
  createdAt: string;
  finishedAt: string | null;
  result: Record<string, unknown> | null;
};

/**
 * The durable trace a job leaves about its server: a backup, scan or update
 * record, listed per server newest first.
 */
export class RecordStore {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  private key(kind: RecordKind, id: string): string {
    return this.keys.record(kind, id);
  }

  private serverKey(kind: RecordKind, serverId: string): string {
    return this.keys.serverRecords(kind, serverId);
  }

  /** Create or (on a retried attempt) reset the record; idempotent per id. */
  async start(kind: RecordKind, id: string, fields: { serverId: string; jobId: string; tenant: string }): Promise<void> {
    const now = Date.now();
    await this.redis
      .multi()
      .hset(this.key(kind, id), { ...fields, kind, status: 'running' satisfies RecordStatus, createdAt: new Date(now).toISOString() })
      .expire(this.key(kind, id), RECORD_TTL_SECONDS)
      .zadd(this.serverKey(kind, fields.serverId), now, id)
      .exec();
    await this.trim(kind, fields.serverId);
  }

  /** Keep the newest RECORDS_PER_SERVER records of a server: a busy server's history does not grow Redis without bound. */
  private async trim(kind: RecordKind, serverId: string): Promise<void> {
    const key = this.serverKey(kind, serverId);
    const old = await this.redis.zrange(key, 0, -(RECORDS_PER_SERVER + 1));
    if (old.length === 0) return;
    await this.redis
      .multi()
      .del(...old.map((id) => this.key(kind, id)))
      .zrem(key, ...old)
      .exec();
  }

  /** Store how the job ended; a failure before the record was started (a restore has none) writes nothing. */
  async finish(kind: RecordKind, id: string, status: RecordStatus, result: unknown): Promise<void> {
    if (status === 'failed' && !(await this.redis.exists(this.key(kind, id)))) return;
    await this.redis
      .multi()
      .hset(this.key(kind, id), { status, finishedAt: new Date().toISOString(), result: JSON.stringify(result) })
      .expire(this.key(kind, id), RECORD_TTL_SECONDS)
      .exec();
  }

  /** The server's newest records of a kind (newest first), with their results parsed. */
  async recent(kind: RecordKind, serverId: string, limit: number): Promise<StoredRecord[]> {
    const ids = await this.redis.zrevrange(this.serverKey(kind, serverId), 0, limit - 1);
    if (ids.length === 0) return [];
    const m = this.redis.multi();
    for (const id of ids) m.hgetall(this.key(kind, id));
    const rows = (await m.exec()) ?? [];
    const out: StoredRecord[] = [];
    rows.forEach(([err, h], i) => {
      const r = h as Record<string, string> | null;
      if (err || !r || !r.status) return;
      out.push({
        id: ids[i]!,
        jobId: r.jobId ?? '',
        status: r.status as RecordStatus,
        createdAt: r.createdAt ?? '',
        finishedAt: r.finishedAt ?? null,
        result: r.result ? (JSON.parse(r.result) as Record<string, unknown>) : null,
      });
    });
    return out;
  }
}
