import { LANE_ORDER_FN, LANE_SCORE_FN, PRUNE_SLOTS_FN } from './fair-dispatch.js';

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
 * tenant's lane of parked jobs and KEYS[8] the parked jobs (fair dispatch): a job that starts is parked no more;
 * KEYS[9] the ring of tenants with parked jobs and KEYS[10] its turn counter, KEYS[11] the tenant's jobs of the
 * queue (its listing index).
 * ARGV[1] job id, ARGV[2] now, ARGV[3] expiry, ARGV[4] default cap, ARGV[5] the tenant's share of the
 * queue's capacity, ARGV[6] the whole capacity, ARGV[7] this start's member in KEYS[5], ARGV[8] the tenant,
 * ARGV[9] the job's priority and ARGV[10] its order of arrival (laneOrder), or '' when not known.
 *
 * At its cap, a job may take the slot of a later job of its tenant (by lane order) that holds one reserved but
 * has not started (ready: fair dispatch admitted it while a worker had taken this one already, before the API
 * admitted their request): that job goes back to wait parked in its place, its start given back, and this one
 * starts, unless an earlier job of its tenant waits too (parked, or taken by a worker and not started). So a bulk
 * request's jobs start in the request's order.
 * Returns { 1 (taken), cap, active }, { 0 (at its cap), cap, active }, { 3 (jobs of its tenant parked before it), parked }
 * or { 2 (throttled), max, perMs, free }
 * where `free` is when the throttle's window lets one more job start.
 */
export function acquireSlotLua(setTtlMs: number): string {
  return `${PRUNE_SLOTS_FN}${LANE_SCORE_FN}${LANE_ORDER_FN}
local now, cap = tonumber(ARGV[2]), tonumber(ARGV[4])
local override = tonumber(redis.call('GET', KEYS[2]) or '')
if override then cap = math.min(override, tonumber(ARGV[6])) else cap = math.min(cap, tonumber(ARGV[5])) end
cap = math.max(1, cap)
local active = pruneSlots(KEYS[1], KEYS[6], now, cap)
local own = redis.call('ZSCORE', KEYS[1], ARGV[1])
local tookOver = false
if not own and active >= cap then
  local priority, order = tonumber(ARGV[9]), tonumber(ARGV[10])
  if not (priority and order) then return { 0, cap, active } end
  local mine = laneScore(priority, order)
  local first = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
  if first[1] and first[1] ~= ARGV[1] and tonumber(first[2]) < mine then return { 0, cap, active } end
  -- A job's place in its tenant's lane, from its hash (priority, creation time, place in its request), and its creation.
  local function laneScoreOf(id)
    local h = redis.call('HMGET', KEYS[6] .. id, 'timestamp', 'priority', 'data')
    local ok, data = pcall(cjson.decode, h[3] or '')
    local place = ok and type(data) == 'table' and tonumber(data.place) or 0
    return laneScore(tonumber(h[2]) or 0, laneOrder(tonumber(h[1]) or 0, place)), tonumber(h[1]) or now
  end
  -- The latest of its tenant's jobs that holds a slot reserved, ready and not started, if later than this one.
  local later, laterScore, laterCreated = nil, mine, 0
  for _, holder in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if redis.call('ZSCORE', KEYS[6] .. 'prioritized', holder) and redis.call('EXISTS', KEYS[6] .. holder .. ':lock') == 0 then
      local score, created = laneScoreOf(holder)
      if score > laterScore then later, laterScore, laterCreated = holder, score, created end
    end
  end
  if not later then return { 0, cap, active } end
  -- An earlier job of its tenant that a worker took too and that has not started (no slot yet: on its way here,
  -- or going back to its place) has the better claim: this one waits. Looked for among the 1000 jobs taken last
  -- (BullMQ pushes a job it takes at the head of \`active\`): a look costs at most that, however busy the queue.
  for _, id in ipairs(redis.call('LRANGE', KEYS[6] .. 'active', 0, 999)) do
    if id ~= ARGV[1] and not redis.call('ZSCORE', KEYS[1], id) and redis.call('ZSCORE', KEYS[11], id)
      and redis.call('EXISTS', KEYS[6] .. id .. ':lock') == 1 and laneScoreOf(id) < mine then
      return { 0, cap, active }
    end
  end
  -- It waits parked in its place again, as waiting to start (its quota), its counted start given back.
  redis.call('ZREM', KEYS[6] .. 'prioritized', later)
  redis.call('ZADD', KEYS[7], laterScore, later)
  redis.call('HSET', KEYS[8], later, ARGV[8])
  if not redis.call('ZSCORE', KEYS[9], ARGV[8]) then redis.call('ZADD', KEYS[9], redis.call('INCR', KEYS[10]), ARGV[8]) end
  redis.call('ZREM', KEYS[1], later)
  redis.call('ZREM', KEYS[5], later .. ':dispatch')
  redis.call('ZADD', KEYS[3], laterCreated, later)
  tookOver = true
end
-- Its tenant has jobs parked before it (fair dispatch): it waits behind them (unless it is the first of them).
if not own and not tookOver and redis.call('EXISTS', KEYS[7]) == 1 and redis.call('ZRANK', KEYS[7], ARGV[1]) ~= 0 then
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
