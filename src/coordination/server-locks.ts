import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { LOCK_ACQUIRE_LUA, LOCK_RELEASE_LUA, LOCK_RENEW_LUA } from '../redis/lua/server-locks.js';

/** A lock lives this long unless its holder renews it: a crashed process holds it at most this long. */
export const LOCK_TTL_MS = 30_000;
const RENEW_EVERY_MS = LOCK_TTL_MS / 3;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiLockAcquire(key: string, owner: string, ttlMs: number): Promise<string>;
    jobsapiLockRenew(key: string, owner: string, ttlMs: number): Promise<number>;
    jobsapiLockRelease(key: string, owner: string): Promise<number>;
  }
}

export type HeldLock = { release(): Promise<void> };

/**
 * One job at a time per server and kind (two backups, or two updates, of the
 * same server never overlap). The owner is the job id, so a job run again
 * after its process died takes its own lock back at once; a lock whose holder
 * vanished expires after LOCK_TTL_MS. The holder renews it while it works.
 */
export class ServerLocks {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly onLost: (key: string) => void = () => {},
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiLockAcquire', { numberOfKeys: 1, lua: LOCK_ACQUIRE_LUA });
    redis.defineCommand('jobsapiLockRenew', { numberOfKeys: 1, lua: LOCK_RENEW_LUA });
    redis.defineCommand('jobsapiLockRelease', { numberOfKeys: 1, lua: LOCK_RELEASE_LUA });
  }

  key(kind: QueueName, serverId: string): string {
    return this.keys.serverLock(kind, serverId);
  }

  /** The lock, held and renewed until released; or the id of the job that holds it. */
  async acquire(kind: QueueName, serverId: string, owner: string): Promise<{ held: HeldLock } | { holder: string }> {
    const key = this.key(kind, serverId);
    const holder = await this.redis.jobsapiLockAcquire(key, owner, LOCK_TTL_MS);
    if (holder !== '') return { holder };
    const timer = setInterval(() => {
      this.redis.jobsapiLockRenew(key, owner, LOCK_TTL_MS).then(
        (ok) => ok === 0 && this.onLost(key),
        () => {},
      );
    }, RENEW_EVERY_MS);
    timer.unref();
    return {
      held: {
        release: async () => {
          clearInterval(timer);
          await this.redis.jobsapiLockRelease(key, owner).catch(() => {});
        },
      },
    };
  }
}
