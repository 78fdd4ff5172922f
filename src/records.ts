import type { Redis } from 'ioredis';
import type { QueueName } from './job-types.js';

export type RecordKind = QueueName;
export type RecordStatus = 'pending' | 'running' | 'completed' | 'failed';

/** How long scan and update records are kept; backup records live as long as their archive. */
const RECORD_TTL_SECONDS = 8 * 24 * 3600;
/** The newest scan and update records kept per server; older ones are deleted as new ones start. */
export const RECORDS_PER_SERVER = 100;

/**
 * The durable trace a job leaves about its server: a backup, scan or update
 * record, listed per server newest first.
 */
export class RecordStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(kind: RecordKind, id: string): string {
    return `${this.prefix}:jobsapi:record:${kind}:${id}`;
  }

  private serverKey(kind: RecordKind, serverId: string): string {
    return `${this.prefix}:jobsapi:server:${serverId}:${kind}`;
  }

  /** Create or (on a retried attempt) reset the record; idempotent per id. */
  async start(kind: RecordKind, id: string, fields: { serverId: string; jobId: string; tenant: string }): Promise<void> {
    const now = Date.now();
    const m = this.redis
      .multi()
      .hset(this.key(kind, id), { ...fields, kind, status: 'running' satisfies RecordStatus, createdAt: new Date(now).toISOString() })
      .zadd(this.serverKey(kind, fields.serverId), now, id);
    if (kind !== 'backup') m.expire(this.key(kind, id), RECORD_TTL_SECONDS);
    await m.exec();
    if (kind !== 'backup') await this.trim(kind, fields.serverId);
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

  async finish(kind: RecordKind, id: string, status: RecordStatus, result: unknown): Promise<void> {
    await this.redis.hset(this.key(kind, id), {
      status,
      finishedAt: new Date().toISOString(),
      result: JSON.stringify(result),
    });
  }
}
