/**
 * Lua of the webhook registrations (src/webhooks/store.ts) and of the
 * dispatcher's cursor (src/webhooks/dispatcher.ts). Every key a script
 * touches is in KEYS; the registration keys share the `{webhooks}` tag.
 */

/**
 * Register a webhook unless its tenant has `cap` already.
 * KEYS[1] the tenant's set of ids, KEYS[2] the webhook's hash, KEYS[3] the set of tenants with webhooks;
 * ARGV[1] the cap, ARGV[2] the id, ARGV[3] the tenant, ARGV[4..] the hash's fields and values.
 * Answers { 1, count } when added, { 0, count } when the tenant is at its cap.
 */
export const WEBHOOK_CREATE_LUA = `
local count = redis.call('SCARD', KEYS[1])
if count >= tonumber(ARGV[1]) then return {0, count} end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('SADD', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return {1, count + 1}`;

/**
 * Remove a webhook of a tenant, with its delivery log.
 * KEYS[1] the webhook's hash, KEYS[2] the tenant's set, KEYS[3] the delivery log, KEYS[4] the set of tenants with webhooks;
 * ARGV[1] the tenant, ARGV[2] the id. Answers 1 when removed, 0 when there was no such webhook of that tenant.
 */
export const WEBHOOK_REMOVE_LUA = `
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return 1`;

/**
 * Give a webhook a new secret; the current one keeps signing until ARGV[3] (ms since the epoch).
 * KEYS[1] the webhook's hash; ARGV[1] the tenant, ARGV[2] the new secret, ARGV[3] until when the old one signs too.
 * Answers 1, or 0 when there is no such webhook of that tenant.
 */
export const WEBHOOK_ROTATE_LUA = `
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
local current = redis.call('HGET', KEYS[1], 'secret')
redis.call('HSET', KEYS[1], 'previousSecret', current, 'previousSecretUntil', ARGV[3], 'secret', ARGV[2])
return 1`;

/**
 * Move the dispatcher's cursor forward to a stream entry id, never back (two processes may read the same entries).
 * KEYS[1] the cursor; ARGV[1] the entry id (ms-seq). Answers 1 when moved.
 */
export const CURSOR_ADVANCE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local cm, cs = string.match(cur, '^(%d+)-(%d+)$')
  local nm, ns = string.match(ARGV[1], '^(%d+)-(%d+)$')
  cm, cs, nm, ns = tonumber(cm), tonumber(cs), tonumber(nm), tonumber(ns)
  if nm < cm or (nm == cm and ns <= cs) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;
