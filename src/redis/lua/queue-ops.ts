/**
 * Lua of the queue operations (src/services/queue-ops.ts).
 *
 * Move up to a batch of a queue's waiting jobs to BullMQ's delayed set, due
 * at now + delay: `POST /api/queues/:queue/drain { delayMs }`. The job stays
 * the same job (id, data, priority, attempts made, log, tenant, index
 * entries); only where it waits changes, in one step, so a worker can never
 * take it half moved. The inverse of BullMQ's promote, written as BullMQ's
 * changeDelay is: the delayed score is the due time × 0x1000 plus a counter
 * (jobs moved together keep their order), the job's `delay` field is set, a
 * `delayed` event is added to the queue's stream, and the delay marker is set
 * to the earliest due time so that a worker wakes for it (a paused queue sets
 * it when resumed). The oldest waiting jobs go first (the tail of `wait`),
 * then the prioritized ones by priority; the legacy `paused` list too.
 * KEYS[1] the queue's key prefix (bull:{scan}:, a job's hash is this plus its id),
 * KEYS[2] wait, KEYS[3] paused, KEYS[4] prioritized, KEYS[5] delayed, KEYS[6] meta,
 * KEYS[7] marker, KEYS[8] the queue's event stream
 * ARGV[1] now (ms), ARGV[2] delay (ms), ARGV[3] batch size, ARGV[4] the log line each job gets
 * Returns the number of jobs moved (fewer than the batch: none is left).
 */
export const DELAY_WAITING_LUA = `
local rcall = redis.call
local qprefix, delayedKey = KEYS[1], KEYS[5]
local delay, batch = tonumber(ARGV[2]), tonumber(ARGV[3])
local due = tonumber(ARGV[1]) + delay
local maxEvents = tonumber(rcall('HGET', KEYS[6], 'opts.maxLenEvents')) or 10000
local base, top = due * 0x1000, (due + 1) * 0x1000 - 1
local score = base
local last = rcall('ZREVRANGEBYSCORE', delayedKey, top, base, 'WITHSCORES', 'LIMIT', 0, 1)
if last[2] then score = math.min(tonumber(last[2]) + 1, top) end
local moved = 0
local function move(id)
  local jobKey = qprefix .. id
  if rcall('EXISTS', jobKey) == 0 then return end
  rcall('ZADD', delayedKey, score, id)
  if score < top then score = score + 1 end
  rcall('HSET', jobKey, 'delay', delay)
  rcall('RPUSH', jobKey .. ':logs', ARGV[4])
  rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'delayed', 'jobId', id, 'delay', due)
  moved = moved + 1
end
for _, list in ipairs({ KEYS[2], KEYS[3] }) do
  while moved < batch do
    local id = rcall('RPOP', list)
    if not id then break end
    -- '0:...' is an old BullMQ marker, not a job.
    if string.sub(id, 1, 2) ~= '0:' then move(id) end
  end
end
while moved < batch do
  local popped = rcall('ZPOPMIN', KEYS[4])
  if not popped[1] then break end
  move(popped[1])
end
if moved > 0 and rcall('HEXISTS', KEYS[6], 'paused') == 0 then
  local first = rcall('ZRANGE', delayedKey, 0, 0, 'WITHSCORES')
  if first[2] then rcall('ZADD', KEYS[7], math.floor(tonumber(first[2]) / 0x1000), '1') end
end
return moved`;
