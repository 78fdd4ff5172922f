/**
 * Count `n` requests of one rate-limit key at once (src/http/rate-limit.ts:
 * the requests of one tenant and route that one API process read in one turn
 * of the event loop). The window starts with the first request counted.
 * KEYS[1] the key; ARGV[1] n, ARGV[2] the window (ms). Returns { count after, ms left in the window }.
 */
export const RATE_COUNT_LUA = `
local n, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = redis.call('INCRBY', KEYS[1], n)
local ttl = -1
if current > n then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return { current, ttl }
`;
