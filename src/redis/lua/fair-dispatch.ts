/**
 * Fair dispatch: which tenant's job starts next is decided when a worker can
 * take one, round robin over the tenants that have jobs waiting, within each
 * tenant's cap (TENANT_MAX_ACTIVE in its share of the queue's capacity, or an
 * operator's override) and throttle. src/coordination/fair-dispatch.ts says
 * when these run.
 *
 * A new job is added by BullMQ as usual (to `prioritized`). The API's index
 * script then keeps it there, reserving a slot of its tenant, when the tenant
 * is under its cap, has nothing parked and the queue has fewer than
 * `readyMax` jobs ready; otherwise it parks it: out of `prioritized`, into
 * its tenant's lane. Jobs parked are waiting jobs to every reader (a job in no
 * BullMQ set reads as waiting). Whenever a slot frees (a job ends, a worker's
 * periodic look), `refill` takes the head of the lane of the tenant whose turn
 * it is (the lowest turn in the ring among those under their cap) and puts it
 * back in `prioritized` with a new counter, so it starts after the jobs
 * already ready: the decision is made at the last moment, and a tenant's
 * thousands of parked jobs cost nothing until their turn.
 *
 * Keys, under the queue's hash tag, named from the product's key prefix of
 * the queue given in KEYS (`bull:jobsapi:{scan}:`, src/redis/keys.ts `fair`):
 *   fair:lane:<tenant>   sorted set: the tenant's parked jobs, by priority (1..5; at most 7 here) × 2^50 + order of
 *                        arrival: the job's creation (ms since 2020) × 1024 + its place in its bulk request
 *                        (laneOrder, below)
 *   fair:ring            sorted set: tenants with parked jobs, by their turn (lowest goes next)
 *   fair:turn            the turn counter
 *   fair:parked          hash: parked job id -> tenant (counts, explain, removal)
 *   slots:<tenant>, tenant-limit:<tenant>, throttle:<tenant>, starts:<tenant>: the tenant's slots, override,
 *   throttle and throttled starts (src/redis/lua/tenant-slots.ts, which takes a slot for a job not dispatched here)
 * and BullMQ's `prioritized`, `wait`, `pc`, `meta`, `marker` and job hashes from the queue's key prefix.
 *
 * ARGV of every script starts with: now, the default cap, the tenant's share of the capacity, the capacity,
 * readyMax (most jobs ready at once), the expiry of a slot reserved for a ready job, the slot set's TTL.
 */
/**
 * The slots a tenant holds in a queue, once those that hold nothing are dropped: expired ones, and, when
 * there are \`cap\` or more, those whose job is neither ready (in \`prioritized\`) nor running (its BullMQ lock
 * held): a job reserved ready, then drained, delayed, cleaned or removed, or failed before it took its turn,
 * or one whose worker process died. Answers how many are left.
 */
export const PRUNE_SLOTS_FN = `
local function pruneSlots(slots, qprefix, now, cap)
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  local held = redis.call('ZCARD', slots)
  if held < cap then return held end
  for _, holder in ipairs(redis.call('ZRANGE', slots, 0, -1)) do
    if not redis.call('ZSCORE', qprefix .. 'prioritized', holder) and redis.call('EXISTS', qprefix .. holder .. ':lock') == 0 then
      redis.call('ZREM', slots, holder)
      held = held - 1
    end
  end
  return held
end
`;

/**
 * A parked job's place in its lane: its priority (1..5, at most 7 here) × 2^50, then its order of arrival (below
 * 2^50: laneOrder, from its creation time and its place in its bulk request). Whoever parks it (the API, or a
 * worker that took it first) gives it the same place, so a job a worker took before the API admitted it goes
 * back where it was among its request's jobs.
 */
export const LANE_SCORE_FN = `
local function laneScore(priority, order)
  return math.max(0, math.min(7, priority)) * 1125899906842624 + order
end
`;

/** 2020-01-01 in ms since the epoch: lane orders count from there (2^40 ms: 34 years). */
const ORDER_EPOCH_MS = 1_577_836_800_000;
/** Places within one millisecond: a bulk request's jobs share their creation time. */
const PLACES_PER_MS = 1024;

/**
 * A job's order of arrival in its tenant's lane (below 2^50): its creation time, then its place in its bulk
 * request (0 for a job enqueued alone). The API that admits it and a worker that puts it back compute the same,
 * so a job keeps its place among its request's jobs whoever parks it.
 */
export function laneOrder(createdAt: number, place = 0): number {
  const ms = Math.min(Math.max(0, Math.floor(createdAt) - ORDER_EPOCH_MS), 2 ** 40 - 1);
  return ms * PLACES_PER_MS + (Math.max(0, Math.floor(place)) % PLACES_PER_MS);
}

/** laneOrder, for a script that reads a job's creation time and place from its hash. */
export const LANE_ORDER_FN = `
local function laneOrder(createdAt, place)
  local ms = math.min(math.max(0, math.floor(createdAt) - ${ORDER_EPOCH_MS}), ${2 ** 40 - 1})
  return ms * ${PLACES_PER_MS} + (math.max(0, math.floor(place)) % ${PLACES_PER_MS})
end
`;

const FAIR_FN = `
local FP, FQ = KEYS[1], KEYS[2]
local NOW, DEFAULT_CAP, SHARE_CAP, CAPACITY = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local READY_MAX, READY_EXPIRY, SET_TTL = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local RING, TURN, PARKED = FP .. 'fair:ring', FP .. 'fair:turn', FP .. 'fair:parked'
local PRIORITIZED = FQ .. 'prioritized'
local TWO32, TWO50 = 4294967296, 1125899906842624
${LANE_SCORE_FN}
local function laneOf(t) return FP .. 'fair:lane:' .. t end
-- A tenant's cap (its override within the capacity, else the default within its share) and throttle (max starts
-- per \`per\` ms, or none), read once a call.
local limitsOf = {}
local function limits(t)
  local l = limitsOf[t]
  if l then return l end
  local v = redis.call('MGET', FP .. 'tenant-limit:' .. t, FP .. 'throttle:' .. t)
  local override, c = tonumber(v[1] or ''), nil
  if override then c = math.min(override, CAPACITY) else c = math.min(DEFAULT_CAP, SHARE_CAP) end
  local max, per = string.match(v[2] or '', '^(%d+):(%d+)$')
  l = { math.max(1, c), tonumber(max), tonumber(per) }
  limitsOf[t] = l
  return l
end
${PRUNE_SLOTS_FN}
-- Reserve a slot of tenant t for job id when it is under its cap and its throttle lets one more start
-- (a job that holds one already keeps it: admitted twice, it is neither counted twice nor parked; a job taken
-- from its lane, \`fresh\`, holds none). Slots are pruned only when they reach the cap: an expired one
-- counts until then, and never decides alone.
-- TOOK_LAST: the slot taken was the tenant's last free one (dispatch need not look at the tenant again).
local TOOK_LAST = false
local function take(t, id, fresh)
  local slots = FP .. 'slots:' .. t
  TOOK_LAST = false
  if not fresh and redis.call('ZSCORE', slots, id) then return true end
  local l = limits(t)
  local cap, max, per = l[1], l[2], l[3]
  local held = redis.call('ZCARD', slots)
  if held >= cap then
    held = pruneSlots(slots, FQ, NOW, cap)
    if held >= cap then return false end
  end
  if max and per then
    local starts = FP .. 'starts:' .. t
    redis.call('ZREMRANGEBYSCORE', starts, '-inf', NOW - per)
    if redis.call('ZCARD', starts) >= max then return false end
    -- The start's member names the job: a job that then gives its turn back takes its start back (tenant-slots.ts).
    redis.call('ZADD', starts, NOW, id .. ':dispatch')
    redis.call('PEXPIRE', starts, per)
  end
  redis.call('ZADD', slots, READY_EXPIRY, id)
  redis.call('PEXPIRE', slots, SET_TTL)
  TOOK_LAST = held + 1 >= cap
  return true
end
local function readyNow() return redis.call('ZCARD', PRIORITIZED) + redis.call('LLEN', FQ .. 'wait') end
local META
local function meta()
  META = META or redis.call('HMGET', FQ .. 'meta', 'paused', 'concurrency')
  return META
end
local function wake()
  local m = meta()
  if m[1] then return end
  if m[2] and redis.call('LLEN', FQ .. 'active') >= tonumber(m[2]) then return end
  redis.call('ZADD', FQ .. 'marker', 0, '0')
end
-- Dispatch up to \`limit\` parked jobs, one per turn of the ring, while fewer than READY_MAX are ready and the
-- queue is not paused (a paused queue's reservations would only expire and count throttled starts).
-- A dispatched job no longer counts as waiting to start (its tenant's quota): a worker takes it next.
-- DISPATCHED: the ids dispatched.
local DISPATCHED = {}
local function refill(limit)
  -- The tenants in turn order, a page at a time: every tenant with parked jobs is looked at, however many are full.
  local tenants = redis.call('ZRANGE', RING, 0, 63)
  if #tenants == 0 or meta()[1] then return 0 end
  -- With one page, the ring's size is known, and so is when every tenant left in it is full.
  local ringSize = #tenants < 64 and #tenants or nil
  local ready, moved, full, nfull = readyNow(), 0, {}, 0
  local function markFull(t)
    if not full[t] then full[t], nfull = true, nfull + 1 end
  end
  local function leftRing(t)
    redis.call('ZREM', RING, t)
    if ringSize then ringSize = ringSize - 1 end
    if full[t] then nfull = nfull - 1 end
    full[t] = 'gone'
  end
  local pass = 0
  while ready < READY_MAX and moved < limit do
    local served = false
    -- The ring again after a turn was served (that tenant went to its end).
    if pass > 0 then tenants = redis.call('ZRANGE', RING, 0, 63) end
    pass = pass + 1
    local page = 0
    local function nextTenant(i)
      if i > #tenants then
        -- A short page is the ring's last.
        if #tenants < 64 then return nil end
        page = page + 1
        tenants = redis.call('ZRANGE', RING, page * 64, page * 64 + 63)
        if #tenants == 0 then return nil end
        i = 1
      end
      return i, tenants[i]
    end
    local i, t = nextTenant(1)
    while t do
      if not full[t] then
        local lane = laneOf(t)
        -- The head and whether another job follows it.
        local head = redis.call('ZRANGE', lane, 0, 1, 'WITHSCORES')
        if #head == 0 then
          leftRing(t)
        elseif redis.call('EXISTS', FQ .. head[1]) == 0 then
          -- Removed while parked: forget it, look again.
          redis.call('ZREM', lane, head[1])
          redis.call('HDEL', PARKED, head[1])
          served = true
          break
        elseif redis.call('EXISTS', FQ .. head[1] .. ':lock') == 1 then
          -- Still running: a worker is putting it back (PARK_RUNNING_LUA); its tenant's turn waits for it.
          markFull(t)
        elseif take(t, head[1], true) then
          local id = head[1]
          redis.call('ZREM', lane, id)
          redis.call('HDEL', PARKED, id)
          local priority = math.floor(tonumber(head[2]) / TWO50)
          redis.call('ZADD', PRIORITIZED, priority * TWO32 + redis.call('INCR', FQ .. 'pc') % TWO32, id)
          redis.call('ZREM', FP .. 'queued:' .. t, id)
          DISPATCHED[#DISPATCHED + 1] = id
          if #head > 2 then
            -- Its next turn comes after every other tenant's (alone in the ring, it is first whatever its turn).
            if ringSize ~= 1 then redis.call('ZADD', RING, redis.call('INCR', TURN), t) end
            -- At its cap now: another look this call would only find it full again (and walk its slots to be sure).
            if TOOK_LAST then markFull(t) end
          else
            leftRing(t)
          end
          moved, ready, served = moved + 1, ready + 1, true
          break
        else
          markFull(t)
        end
      end
      i, t = nextTenant(i + 1)
    end
    if not served then break end
    if ringSize and nfull >= ringSize then break end
  end
  if moved > 0 then wake() end
  return moved
end
`;

/**
 * After BullMQ added the API's new jobs (with their index entries, in the same batch): keep each new job
 * ready (a slot of its tenant reserved) or park it. A job no longer in \`prioritized\` (taken already, or
 * added with a delay) is left alone. KEYS[1] the queue's product prefix, KEYS[2] its BullMQ prefix;
 * ARGV[1..7] as above, then id, tenant, order of arrival (laneOrder), ... Returns the number of jobs parked.
 */
export const ADMIT_LUA = `${FAIR_FN}
local fresh = {}
for i = 8, #ARGV, 3 do
  local id, t, order = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local score = redis.call('ZSCORE', PRIORITIZED, id)
  if score then fresh[#fresh + 1] = { id, t, score, order } end
end
-- The new jobs are in prioritized already: the jobs ready before them are the rest.
local ready, parked, kept = readyNow() - #fresh, 0, 0
for _, job in ipairs(fresh) do
  local id, t, score, order = job[1], job[2], tonumber(job[3]), job[4]
  local lane = laneOf(t)
  if ready < READY_MAX and redis.call('EXISTS', lane) == 0 and take(t, id, false) then
    ready, kept = ready + 1, kept + 1
  else
    -- In its lane by priority, then by its order of arrival (BullMQ's counter is reset whenever \`prioritized\`
    -- empties, and a job a worker took first comes back later than jobs created after it).
    score = laneScore(math.floor(score / TWO32), order)
    redis.call('ZREM', PRIORITIZED, id)
    redis.call('ZADD', lane, score, id)
    redis.call('HSET', PARKED, id, t)
    if not redis.call('ZSCORE', RING, t) then redis.call('ZADD', RING, redis.call('INCR', TURN), t) end
    parked = parked + 1
  end
end
-- BullMQ woke the workers when it added the jobs; jobs put back by an operator's step (unparkAll) were not.
if kept > 0 then wake() end
-- Parked behind others while slots are free (none running yet, slots that expired): dispatch now, not at the next look.
if parked > 0 then refill(READY_MAX) end
return parked`;

/** A periodic look: dispatch what the free slots allow. ARGV[8] the most jobs to dispatch. Returns how many. */
export const REFILL_LUA = `${FAIR_FN}
return refill(tonumber(ARGV[8]))`;

/**
 * Jobs end (or give their turn back): their tenants' slots free, and the next tenants' jobs are dispatched.
 * ARGV[8] the most jobs to dispatch, then tenant, job id, ... (the jobs of a worker process that ended
 * together). Returns the ids of the jobs dispatched: the worker that asked starts these without asking again
 * whether they were (src/coordination/tenant-slots.ts).
 */
export const RELEASE_LUA = `${FAIR_FN}
for i = 9, #ARGV, 2 do redis.call('ZREM', FP .. 'slots:' .. ARGV[i], ARGV[i + 1]) end
refill(tonumber(ARGV[8]))
return DISPATCHED`;

/**
 * Put every parked job of the queue back in \`prioritized\` with its score, for an operator's drain, delay or
 * clean of the waiting jobs (BullMQ's scripts, over its own sets), without waking the workers; the jobs such a
 * step leaves are admitted again after it. KEYS[1] the product prefix, KEYS[2] the BullMQ prefix.
 * Returns the jobs put back: id, tenant, order of arrival, ...
 */
export const UNPARK_ALL_LUA = `
local FP, FQ = KEYS[1], KEYS[2]
local ring, out = FP .. 'fair:ring', {}
for _, t in ipairs(redis.call('ZRANGE', ring, 0, -1)) do
  local lane = FP .. 'fair:lane:' .. t
  while true do
    local items = redis.call('ZRANGE', lane, 0, 999, 'WITHSCORES')
    if #items == 0 then break end
    local args, ids = {}, {}
    for i = 1, #items, 2 do
      if redis.call('EXISTS', FQ .. items[i]) == 1 then
        -- BullMQ's score: its priority, then its counter.
        local score = tonumber(items[i + 1])
        args[#args + 1] = math.floor(score / 1125899906842624) * 4294967296 + redis.call('INCR', FQ .. 'pc') % 4294967296
        args[#args + 1] = items[i]
        out[#out + 1] = items[i]
        out[#out + 1] = t
        -- Its order of arrival, as a number (an integer reply: tostring would round it to 14 digits).
        out[#out + 1] = score % 1125899906842624
      end
      ids[#ids + 1] = items[i]
    end
    if #args > 0 then redis.call('ZADD', FQ .. 'prioritized', unpack(args)) end
    redis.call('ZREM', lane, unpack(ids))
  end
end
redis.call('DEL', ring, FP .. 'fair:parked')
return out`;

/**
 * A worker starts a job: when fair dispatch reserved its slot, the slot becomes the running job's (its expiry
 * from now on renewed) and the job leaves its tenant's queued jobs (TENANT_MAX_QUEUED counts those not started).
 * KEYS[1] the tenant's slots, KEYS[2] its queued jobs; ARGV[1] the slot's expiry, ARGV[2] the job id.
 * Returns 1 when the job was dispatched, 0 when it must take a slot (src/redis/lua/tenant-slots.ts).
 */
export const START_DISPATCHED_LUA = `
if redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1`;

/**
 * A worker that took a job its tenant has no slot for puts it back parked, in two steps around BullMQ's
 * moveToWait, so that no other worker takes it meanwhile and it keeps its place among its tenant's jobs:
 * PARK_RUNNING_LUA parks it while it is still active (dispatch skips a parked job that holds its lock), then
 * BullMQ moves it to \`prioritized\`, then SETTLE_PARKED_LUA takes it out again unless dispatch gave it its
 * turn meanwhile. KEYS[1] the product prefix, KEYS[2] the BullMQ prefix.
 * PARK_RUNNING_LUA: ARGV[1] job id, ARGV[2] tenant, ARGV[3] its priority, ARGV[4] its order of arrival (laneOrder).
 */
export const PARK_RUNNING_LUA = `
local FP = KEYS[1]
${LANE_SCORE_FN}
local id, t, priority, order = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ring, lane = FP .. 'fair:ring', FP .. 'fair:lane:' .. t
redis.call('ZADD', lane, laneScore(priority, order), id)
redis.call('HSET', FP .. 'fair:parked', id, t)
if not redis.call('ZSCORE', ring, t) then redis.call('ZADD', ring, redis.call('INCR', FP .. 'fair:turn'), t) end
return 1`;

/** ARGV[1] job id. Returns 1 when the job stays parked (out of \`prioritized\`), 0 when dispatch took it meanwhile. */
export const SETTLE_PARKED_LUA = `
if redis.call('HEXISTS', KEYS[1] .. 'fair:parked', ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2] .. 'prioritized', ARGV[1])
return 1`;
