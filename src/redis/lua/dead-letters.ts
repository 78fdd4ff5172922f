/**
 * The dead-letter aggregate: a queue's failed jobs by tenant and by error
 * type, kept as they fail and leave, so that grouping them and replaying one
 * type costs what it returns instead of a walk of the index.
 *
 * Per queue, under its hash tag (src/redis/keys.ts `deadLetters`):
 *   <jobs>                         hash: job id -> tenant "\n" error type (what is counted)
 *   <prefix>all:<scope>            sorted set: the dead letters of a scope, by creation time (as the listing index)
 *   <prefix>types:<scope>          hash: sha1(error type) -> error type
 *   <prefix>type:<scope>:<sha1>    sorted set: the dead letters of one error type, by creation time
 * where a scope is a tenant, or `*` for every tenant (tenant names cannot hold `*`).
 * Every write is idempotent: adding a job twice, or forgetting one that is
 * not there, changes nothing; counts are the sets' cardinalities.
 */
const DEAD_FNS = `
local function deadForget(dp, jobs, id)
  local cur = redis.call('HGET', jobs, id)
  if not cur then return 0 end
  local nl = string.find(cur, '\\n', 1, true)
  local tenant, etype = string.sub(cur, 1, nl - 1), string.sub(cur, nl + 1)
  local sha = redis.sha1hex(etype)
  for _, scope in ipairs({ tenant, '*' }) do
    redis.call('ZREM', dp .. 'all:' .. scope, id)
    local tk = dp .. 'type:' .. scope .. ':' .. sha
    redis.call('ZREM', tk, id)
    if redis.call('ZCARD', tk) == 0 then redis.call('HDEL', dp .. 'types:' .. scope, sha) end
  end
  redis.call('HDEL', jobs, id)
  return 1
end
local function deadAdd(dp, jobs, id, tenant, etype, score)
  redis.call('HSET', jobs, id, tenant .. '\\n' .. etype)
  local sha = redis.sha1hex(etype)
  for _, scope in ipairs({ tenant, '*' }) do
    redis.call('ZADD', dp .. 'all:' .. scope, score, id)
    redis.call('ZADD', dp .. 'type:' .. scope .. ':' .. sha, score, id)
    redis.call('HSET', dp .. 'types:' .. scope, sha, etype)
  end
end
`;

/**
 * Bring the aggregate in line with where each job is now: a job in `failed`
 * is counted under the error type given (its tenant read from its data, its
 * score its creation time), a job not in `failed` is forgotten.
 * KEYS[1] the queue's key prefix (bull:{scan}:), KEYS[2] the aggregate's job hash, KEYS[3] its key prefix, KEYS[4] the queue's all-jobs index
 * ARGV[1] how far the failed set has been read (a finishedOn; '' leaves it), then: id, error type ('' forgets only), ...
 */
export const DEAD_RECONCILE_LUA = `${DEAD_FNS}
local qp, jobs, dp, idx = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
for i = 2, #ARGV, 2 do
  local id, etype = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', jobs, id)
  if redis.call('ZSCORE', qp .. 'failed', id) then
    local have = cur and string.sub(cur, string.find(cur, '\\n', 1, true) + 1)
    if etype ~= '' and have ~= etype then
      local h = redis.call('HMGET', qp .. id, 'data', 'timestamp')
      local ok, decoded = pcall(cjson.decode, h[1] or '')
      local tenant = ok and type(decoded) == 'table' and decoded.tenant
      if type(tenant) == 'string' and tenant ~= '' then
        if cur then deadForget(dp, jobs, id) end
        deadAdd(dp, jobs, id, tenant, etype, redis.call('ZSCORE', idx, id) or h[2] or 0)
      end
    end
  elseif cur then
    deadForget(dp, jobs, id)
  end
end
if ARGV[1] ~= '' and tonumber(ARGV[1]) > tonumber(redis.call('GET', dp .. 'mark') or '0') then
  redis.call('SET', dp .. 'mark', ARGV[1])
end
return 1
`;

/**
 * The error types of a scope with their counts and newest example; an
 * example that is gone or no longer failed (retention, a retry from outside
 * the API) is forgotten on the way.
 *
 * First, the failures the aggregate has not counted yet: BullMQ's failed set
 * is scored by when each job failed, and the aggregate keeps how far it has
 * read it (`mark`). When there are some, the answer is them instead (at most
 * 500: { 'new', max finishedOn, id, failedReason, ... }); the caller works
 * out their error types, reconciles them and asks again. So a grouping
 * always includes the failures up to the moment it is asked, and costs the
 * number of error types plus the failures since the last one.
 *
 * KEYS[1] the queue's key prefix, KEYS[2] the aggregate's job hash, KEYS[3] its key prefix; ARGV[1] the scope (a tenant or `*`),
 * ARGV[2] '1' to skip the new failures (the caller could not count them: no progress).
 * Returns { 'groups', type, count, newest id, its name, failedReason, finishedOn, ... } or the new failures.
 */
export const DEAD_GROUPS_LUA = `${DEAD_FNS}
local qp, jobs, dp, scope = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
if ARGV[2] ~= '1' then
  local mark = redis.call('GET', dp .. 'mark') or '0'
  local fresh = redis.call('ZRANGEBYSCORE', qp .. 'failed', mark, '+inf', 'WITHSCORES', 'LIMIT', 0, 500)
  local pending = { 'new', mark }
  for i = 1, #fresh, 2 do
    local id = fresh[i]
    pending[2] = fresh[i + 1]
    if redis.call('HEXISTS', jobs, id) == 0 then
      pending[#pending + 1] = id
      pending[#pending + 1] = redis.call('HGET', qp .. id, 'failedReason') or ''
    end
  end
  if #pending > 2 or #fresh >= 1000 then return pending end
end
local out = { 'groups' }
local types = redis.call('HGETALL', dp .. 'types:' .. scope)
for i = 1, #types, 2 do
  local tk = dp .. 'type:' .. scope .. ':' .. types[i]
  local example
  for _ = 1, 20 do
    local top = redis.call('ZREVRANGE', tk, 0, 0)[1]
    if not top then break end
    local h = redis.call('HMGET', qp .. top, 'name', 'failedReason', 'finishedOn')
    if h[1] and redis.call('ZSCORE', qp .. 'failed', top) then
      example = { top, h[1], h[2] or '', h[3] or '' }
      break
    end
    if deadForget(dp, jobs, top) == 0 then redis.call('ZREM', tk, top) end
  end
  if example then
    local n = #out
    out[n + 1], out[n + 2] = types[i + 1], redis.call('ZCARD', tk)
    out[n + 3], out[n + 4], out[n + 5], out[n + 6] = example[1], example[2], example[3], example[4]
  end
end
return out
`;

/** The aggregate's functions, for the index sweep (SWEEP_INDEX_LUA), which forgets there the jobs it finds gone or no longer failed. */
export const DEAD_FORGET_FN = DEAD_FNS;
