import type { Redis } from 'ioredis';
import type { QueueName } from '../jobs/index.js';

/** A lock lives this long unless its holder renews it: a crashed process holds it at most this long. */
export const LOCK_TTL_MS = 30_000;
const RENEW_EVERY_MS = LOCK_TTL_MS / 3;

/** Take the lock when free or already ours; otherwise answer who holds it. */
const ACQUIRE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return holder`;

/** Renew or release only a lock we still hold. */
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

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
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly onLost: (key: string) => void = () => {},
  ) {
    redis.defineCommand('jobsapiLockAcquire', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    redis.defineCommand('jobsapiLockRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    redis.defineCommand('jobsapiLockRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
  }

  key(kind: QueueName, serverId: string): string {
    return `${this.prefix}:jobsapi:lock:${kind}:${serverId}`;
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
