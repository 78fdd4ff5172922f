/**
 * Lua of the server locks (src/coordination/server-locks.ts).
 * KEYS[1] the lock; ARGV[1] its owner (a job id), ARGV[2] its time to live in ms.
 */

/** Take the lock when free or already ours; otherwise answer who holds it. */
export const LOCK_ACQUIRE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ''
end
return holder`;

/** Renew or release only a lock we still hold. */
export const LOCK_RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
export const LOCK_RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
