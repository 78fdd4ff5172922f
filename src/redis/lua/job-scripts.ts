/**
 * The product's Lua over BullMQ's job hashes and the listing index.
 *
 * Keys: every script gets its keys in KEYS, all of one queue's hash tag
 * (src/redis/keys.ts), so that Redis Cluster runs it on the node that holds
 * the queue. Job hashes, whose ids the script only learns as it reads the
 * index, are named from the queue's key prefix given in KEYS (\`bull:{scan}:\`
 * plus the id), the way BullMQ's own scripts name them: same tag, same node.
 *
 * Lua that reads a job's state in O(log n): sorted-set lookups and a position
 * search in the short \`active\` list only. BullMQ's own getState() searches the
 * wait list with LPOS, which grows with queue depth; here a job found in no
 * other set is waiting, whatever the length of the wait list.
 *
 * The job hash (read first) says where to look first: a job with finishedOn
 * is most likely completed or failed, one with processedOn only is most
 * likely active, any other is most likely waiting with its priority. Every
 * answer still comes from the sets; the hint only orders the lookups, so a
 * waiting job costs one lookup instead of four.
 */
import { DEAD_FORGET_FN } from './dead-letters.js';

const STATE_FN = `
local function storedState(q, id, f)
  if f[9] then
    if redis.call('ZSCORE', q .. 'completed', id) then return 'completed' end
    if redis.call('ZSCORE', q .. 'failed', id) then return 'failed' end
  elseif f[8] then
    if redis.call('LPOS', q .. 'active', id) then return 'active' end
  elseif redis.call('ZSCORE', q .. 'prioritized', id) then
    return 'waiting'
  end
  -- The hint was wrong (a retried or moved job): look everywhere.
  if redis.call('ZSCORE', q .. 'completed', id) then return 'completed' end
  if redis.call('ZSCORE', q .. 'failed', id) then return 'failed' end
  if redis.call('ZSCORE', q .. 'delayed', id) then return 'delayed' end
  if redis.call('ZSCORE', q .. 'prioritized', id) then return 'waiting' end
  if redis.call('LPOS', q .. 'active', id) then return 'active' end
  return 'waiting'
end
-- A job stopped on request failed with the reason 'cancelled' in BullMQ: to callers it is cancelled.
local function jobState(q, id, f)
  local st = storedState(q, id, f)
  if st == 'failed' and f[6] == 'cancelled' then return 'cancelled' end
  return st
end
-- Whether id a sorts at or after id b byte by byte, as sorted sets order members of one score (Lua's own
-- string comparison follows the server's locale, which need not be bytewise).
local function atOrAfter(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a >= #b
end
-- Forget ids of jobs that are gone from their servers' indexes and the id -> server map.
local function forgetServers(serverOf, serverPrefix, ids)
  if #ids == 0 then return end
  local servers = redis.call('HMGET', serverOf, unpack(ids))
  for i, id in ipairs(ids) do
    if servers[i] then redis.call('ZREM', serverPrefix .. servers[i], id) end
  end
  redis.call('HDEL', serverOf, unpack(ids))
end
local FIELDS = {'name', 'data', 'opts', 'progress', 'returnvalue', 'failedReason', 'timestamp', 'processedOn', 'finishedOn', 'atm'}
-- Of BullMQ's options only the attempts number is shown: send that, not the whole document.
local function slim(f)
  f[3] = (f[3] and string.match(f[3], '"attempts":(%d+)')) or false
  return f
end
`;

/** KEYS[1] queue key prefix (bull:{backup}:); ARGV[1] job id. */
export const GET_JOB_LUA = `${STATE_FN}
local f = redis.call('HMGET', KEYS[1] .. ARGV[1], unpack(FIELDS))
if not f[1] then return false end
local state = jobState(KEYS[1], ARGV[1], f)
slim(f)
table.insert(f, 1, state)
return f
`;

/**
 * Walk one queue's job index (a sorted set of job ids scored by creation
 * time) from newest to oldest after a cursor, keep the jobs that pass the
 * filters, stop at \`limit\` jobs or after \`budget\` index entries. Entries
 * whose job no longer exists (removed, or expired by retention) are dropped
 * from the index, unless they are younger than \`pruneBefore\` (their job may
 * be being added). A listing over every queue merges the walks of each
 * (JobStore.list).
 *
 * KEYS[1] the index (all jobs, a tenant's, or a server's), KEYS[2] the
 * queue's key prefix (bull:{scan}:), KEYS[3] the tenant's index when a
 * server's index is walked for a tenant (a job is listed only if it is in
 * it too), else KEYS[1] again, KEYS[4] the id -> server map, KEYS[5] the
 * server index key prefix, KEYS[6] and KEYS[7] the dead-letter aggregate's job hash and key prefix (a gone
 * job dropped here is forgotten there too: the index sweep, which would, no longer sees it)
 * ARGV[1] cursor score ('+inf' for the first page; at most the createdBefore
 * bound) ARGV[2] cursor id ('' for the first page) ARGV[3] limit ARGV[4]
 * state filter ARGV[5] type filter ARGV[6] budget ARGV[7] pruneBefore (ms)
 * ARGV[8] the lowest score listed ('-inf', or createdAfter) ARGV[9] '1' when
 * KEYS[3] is a tenant index to check
 * Returns { nextScore|false, nextId|false, { id, score, state, fields... }... }:
 * no next cursor when the index ends within this walk.
 */
export const LIST_JOBS_LUA = `${STATE_FN}${DEAD_FORGET_FN}
local index, qprefix, member, serverOf, serverPrefix = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local maxScore, cursorId = ARGV[1], ARGV[2]
local limit, stateF, typeF, budget = tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local pruneBefore, minScore, checkMember = tonumber(ARGV[7]), ARGV[8], ARGV[9] == '1'
local cursorScore = tonumber(maxScore)
local out, gone = {}, {}
-- Without filters the first page needs limit entries (one more tells whether
-- the index ends there); with filters, read ahead by hundreds.
local unfiltered = stateF == '' and typeF == '' and not checkMember
local scanned, offset, batch = 0, 0, unfiltered and math.min(limit + 1, 100) or 100
local lastScore, lastId = false, false
local exhausted = false
while #out < limit and scanned < budget and not exhausted do
  local items = redis.call('ZREVRANGEBYSCORE', index, maxScore, minScore, 'WITHSCORES', 'LIMIT', offset, batch)
  local stopped = false
  for i = 1, #items, 2 do
    local id, score = items[i], items[i + 1]
    if not (cursorId ~= '' and tonumber(score) == cursorScore and atOrAfter(id, cursorId)) then
      scanned = scanned + 1
      lastScore, lastId = score, id
      local f = redis.call('HMGET', qprefix .. id, unpack(FIELDS))
      if not f[1] then
        if tonumber(score) < pruneBefore then table.insert(gone, id) end
      elseif (typeF == '' or f[1] == typeF) and (not checkMember or redis.call('ZSCORE', member, id)) then
        local st = jobState(qprefix, id, f)
        if stateF == '' or st == stateF then
          slim(f)
          table.insert(f, 1, st)
          table.insert(f, 1, score)
          table.insert(f, 1, id)
          table.insert(out, f)
        end
      end
      if #out >= limit or scanned >= budget then
        stopped = (i + 1 < #items)
        break
      end
    end
  end
  if #items < batch * 2 and not stopped then exhausted = true end
  offset = offset + batch
  batch = 100
end
if #gone > 0 then
  redis.call('ZREM', index, unpack(gone))
  forgetServers(serverOf, serverPrefix, gone)
  for _, id in ipairs(gone) do deadForget(KEYS[7], KEYS[6], id) end
end
if exhausted then return { false, false, out } end
return { lastScore, lastId, out }
`;

/**
 * Index new jobs of one queue for listing: one script call instead of a MULTI
 * (a MULTI on a connection BullMQ has loaded its scripts on costs a copy of
 * all of them).
 * KEYS[1] the queue's all-jobs index, KEYS[2] the queue's set of tenants,
 * KEYS[3] the queue's tenant index key prefix (a tenant's index is it plus the tenant),
 * KEYS[4] the prefix of the tenants' sets of jobs not started yet (their quota),
 * KEYS[5] the server index key prefix (a server's index is it plus the server id), KEYS[6] the id -> server map
 * ARGV (score, id, tenant, serverId) per job.
 */
export const INDEX_JOBS_LUA = `
local allIdx, tenants, tenantPrefix, queuedPrefix, serverPrefix, serverOf = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local all, byTenant, byServer, servers = {}, {}, {}, {}
local function push(groups, key, score, id)
  local members = groups[key]
  if not members then
    members = {}
    groups[key] = members
  end
  members[#members + 1] = score
  members[#members + 1] = id
end
for i = 1, #ARGV, 4 do
  local score, id, tenant, server = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  all[#all + 1] = score
  all[#all + 1] = id
  push(byTenant, tenant, score, id)
  if server ~= '' then
    push(byServer, server, score, id)
    servers[#servers + 1] = id
    servers[#servers + 1] = server
  end
end
-- One ZADD per index (in chunks that fit unpack), not one per job.
local function zadd(key, members)
  for i = 1, #members, 1000 do
    redis.call('ZADD', key, unpack(members, i, math.min(i + 999, #members)))
  end
end
zadd(allIdx, all)
for tenant, members in pairs(byTenant) do
  zadd(tenantPrefix .. tenant, members)
  zadd(queuedPrefix .. tenant, members)
  redis.call('SADD', tenants, tenant)
end
for server, members in pairs(byServer) do zadd(serverPrefix .. server, members) end
for i = 1, #servers, 1000 do
  redis.call('HSET', serverOf, unpack(servers, i, math.min(i + 999, #servers)))
end
return #all / 2
`;

/**
 * How many of a tenant's jobs of one queue wait to start (its quota). With
 * \`prune\`, first forget the entries of jobs that are gone or have started
 * (a start normally removes its entry: TenantSlots; a job removed or failed
 * before it started does not).
 * KEYS[1] the tenant's queued set, KEYS[2] the queue's key prefix; ARGV[1] prune (0|1).
 */
export const COUNT_QUEUED_LUA = `
if ARGV[1] == '1' then
  local gone = {}
  for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local h = redis.call('HMGET', KEYS[2] .. id, 'name', 'processedOn', 'finishedOn')
    if not h[1] or h[2] or h[3] then gone[#gone + 1] = id end
  end
  for i = 1, #gone, 1000 do redis.call('ZREM', KEYS[1], unpack(gone, i, math.min(i + 999, #gone))) end
end
return redis.call('ZCARD', KEYS[1])
`;

/**
 * One step of the index sweep of one queue, inside Redis so that it costs the
 * API process one call: ZSCAN about \`count\` entries of the queue's all-jobs
 * index from a cursor, and drop from every index of the queue (all, and each
 * tenant's) the entries older than \`pruneBefore\` whose job hash is gone.
 * Entries of jobs that exist but are in no server index (enqueued by a
 * version before the server indexes) are added to their server's: one walk
 * after an upgrade, every job can be listed by server.
 * KEYS[1] all-jobs index, KEYS[2] set of tenants, KEYS[3] the queue's key
 * prefix (bull:{scan}:), KEYS[4] the tenant index key prefix, KEYS[5] the id
 * -> server map, KEYS[6] the server index key prefix, KEYS[7] the queue's set of cancelled jobs,
 * KEYS[8] and KEYS[9] the dead-letter aggregate's job hash and key prefix (a job that is gone or no longer failed is forgotten there)
 * ARGV[1] cursor ARGV[2] count ARGV[3] pruneBefore (ms)
 * Returns { nextCursor, scanned, removed }
 */
export const SWEEP_INDEX_LUA = `${STATE_FN}${DEAD_FORGET_FN}
local scan = redis.call('ZSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local items, qprefix, pruneBefore = scan[2], KEYS[3], tonumber(ARGV[3])
local serverOf, serverPrefix = KEYS[5], KEYS[6]
local gone = {}
for i = 1, #items, 2 do
  local id, score = items[i], tonumber(items[i + 1])
  if redis.call('HEXISTS', KEYS[8], id) == 1 and not redis.call('ZSCORE', qprefix .. 'failed', id) then deadForget(KEYS[9], KEYS[8], id) end
  if redis.call('HEXISTS', serverOf, id) == 0 then
    local data = redis.call('HGET', qprefix .. id, 'data')
    if data then
      local ok, decoded = pcall(cjson.decode, data)
      local server = ok and type(decoded) == 'table' and type(decoded.input) == 'table' and decoded.input.serverId
      if type(server) == 'string' and server ~= '' then
        redis.call('ZADD', serverPrefix .. server, items[i + 1], id)
        redis.call('HSET', serverOf, id, server)
      end
    elseif score < pruneBefore then
      table.insert(gone, id)
    end
  elseif score < pruneBefore and redis.call('EXISTS', qprefix .. id) == 0 then
    table.insert(gone, id)
  end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  for _, tenant in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    redis.call('ZREM', KEYS[4] .. tenant, unpack(gone))
  end
  forgetServers(serverOf, serverPrefix, gone)
  redis.call('ZREM', KEYS[7], unpack(gone))
end
return { scan[1], #items / 2, #gone }
`;

/**
 * Count a tenant's jobs of one queue per state by walking its index, newest
 * first, at most \`budget\` entries. Reads two fields per job (the state hint),
 * never its data.
 *
 * KEYS[1] the tenant's index of the queue, KEYS[2] the queue's key prefix (bull:{scan}:); ARGV[1] budget.
 * Returns { truncated (0|1), state, count, ... }.
 */
export const COUNT_TENANT_LUA = `${STATE_FN}
local qp, budget = KEYS[2], tonumber(ARGV[1])
local total = redis.call('ZCARD', KEYS[1])
local counts, seen = {}, 0
for start = 0, total - 1, 500 do
  if seen >= budget then break end
  local ids = redis.call('ZREVRANGE', KEYS[1], start, math.min(start + 499, start + budget - seen - 1))
  for _, id in ipairs(ids) do
    seen = seen + 1
    local h = redis.call('HMGET', qp .. id, 'name', 'processedOn', 'finishedOn', 'failedReason')
    if h[1] then
      local f = {}
      f[1], f[8], f[9], f[6] = h[1], h[2], h[3], h[4]
      local k = jobState(qp, id, f)
      counts[k] = (counts[k] or 0) + 1
    end
  end
end
local out = { seen < total and 1 or 0 }
for k, v in pairs(counts) do
  out[#out + 1] = k
  out[#out + 1] = v
end
return out
`;
