/**
 * Take a slot for the job when its tenant holds fewer than its cap in this
 * queue: drop slots whose holder stopped renewing them, keep the job's own
 * (a run again after a crash), then ZADD. The set itself expires after
 * `setTtlMs` once nobody renews it.
 * KEYS[1] the tenant's slots in the queue (job id -> expiry), KEYS[2] the tenant's override,
 * KEYS[3] the tenant's jobs of the queue not started yet (a start leaves it: its quota counts waiting jobs).
 * ARGV[1] job id, ARGV[2] now, ARGV[3] expiry, ARGV[4] default cap, ARGV[5] half of the queue's capacity.
 * Returns { 1 (taken) or 0, cap, active }.
 */
export function acquireSlotLua(setTtlMs: number): string {
  return `
local now, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
local override = tonumber(redis.call('GET', KEYS[2]) or '')
if override then cap = override end
cap = math.max(1, math.min(cap, tonumber(ARGV[5])))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local active = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or active < cap then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ${setTtlMs})
  redis.call('ZREM', KEYS[3], ARGV[1])
  return { 1, cap, redis.call('ZCARD', KEYS[1]) }
end
return { 0, cap, active }`;
}
