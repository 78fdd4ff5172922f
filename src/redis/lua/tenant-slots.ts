import { PRUNE_SLOTS_FN } from './fair-dispatch.js';

/**
 * Take a slot for the job when its tenant holds fewer than its cap in this
 * queue and, when the tenant is throttled in the queue, has started fewer
 * than the throttle's `max` jobs in its last `perMs`: drop slots whose holder
 * stopped renewing them, keep the job's own (a run again after a crash: not a
 * new start), then ZADD. The set itself expires after `setTtlMs` once nobody
 * renews it.
 *
 * The cap: TENANT_MAX_ACTIVE within the tenant's share of the queue's capacity
 * (TENANT_MAX_SHARE); an override (queue:set-limit, an operator's decision)
 * replaces both, within the whole capacity. src/coordination/tenant-slots.ts
 * `tenantCap` is the same rule, for the API's answers.
 *
 * KEYS[1] the tenant's slots in the queue (job id -> expiry), KEYS[2] the tenant's override,
 * KEYS[3] the tenant's jobs of the queue not started yet (a start leaves it: its quota counts waiting jobs),
 * KEYS[4] the tenant's throttle in the queue (`max:perMs`), KEYS[5] its starts (member -> start time),
 * KEYS[6] the queue's BullMQ key prefix (to drop slots whose job is neither ready nor running), KEYS[7] the
 * tenant's lane of parked jobs and KEYS[8] the parked jobs (fair dispatch): a job that starts is parked no more.
 * ARGV[1] job id, ARGV[2] now, ARGV[3] expiry, ARGV[4] default cap, ARGV[5] the tenant's share of the
 * queue's capacity, ARGV[6] the whole capacity, ARGV[7] this start's member in KEYS[5].
 * Returns { 1 (taken), cap, active }, { 0 (at its cap), cap, active }, { 3 (jobs of its tenant parked before it), parked }
 * or { 2 (throttled), max, perMs, free }
 * where `free` is when the throttle's window lets one more job start.
 */
export function acquireSlotLua(setTtlMs: number): string {
  return `${PRUNE_SLOTS_FN}
local now, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
local override = tonumber(redis.call('GET', KEYS[2]) or '')
if override then cap = math.min(override, tonumber(ARGV[6])) else cap = math.min(cap, tonumber(ARGV[5])) end
cap = math.max(1, cap)
local active = pruneSlots(KEYS[1], KEYS[6], now, cap)
local own = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not own and active >= cap then return { 0, cap, active } end
-- Its tenant has jobs parked before it (fair dispatch): it waits behind them (unless it is the first of them).
if not own and redis.call('EXISTS', KEYS[7]) == 1 and redis.call('ZRANK', KEYS[7], ARGV[1]) ~= 0 then
  return { 3, redis.call('ZCARD', KEYS[7]) }
end
if not own then
  local max, per = string.match(redis.call('GET', KEYS[4]) or '', '^(%d+):(%d+)$')
  max, per = tonumber(max), tonumber(per)
  if max and per then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - per)
    local started = redis.call('ZCARD', KEYS[5])
    if started >= max then
      local freeing = redis.call('ZRANGE', KEYS[5], started - max, started - max, 'WITHSCORES')
      return { 2, max, per, tonumber(freeing[2]) + per }
    end
    redis.call('ZADD', KEYS[5], now, ARGV[7])
    redis.call('PEXPIRE', KEYS[5], per)
  end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ${setTtlMs})
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
return { 1, cap, redis.call('ZCARD', KEYS[1]) }`;
}

/**
 * GLOBAL_MAX_ACTIVE: take one of the slots every active job of every queue
 * shares, when fewer than the cap are held (slots whose holder stopped renewing
 * them dropped first; the job's own kept).
 * KEYS[1] the global slots (job id -> expiry). ARGV[1] job id, ARGV[2] now, ARGV[3] expiry, ARGV[4] the cap.
 * Returns { 1 (taken) or 0, active }.
 */
export function acquireGlobalSlotLua(setTtlMs: number): string {
  return `
local now, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local active = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or active < cap then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ${setTtlMs})
  return { 1, redis.call('ZCARD', KEYS[1]) }
end
return { 0, active }`;
}
