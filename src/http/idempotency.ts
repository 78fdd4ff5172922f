import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, BadRequestError, ConflictError } from '../errors.js';
import { redisKeys } from '../redis/keys.js';

/** How long a key answers with the job it first created. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** A request that holds a key may take this long before another with the same key stops waiting for it. */
const PENDING_WAIT_MS = 10_000;
/** A key whose request died with its process is free again after this. */
const PENDING_TTL_SECONDS = 60;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route enqueues: an Idempotency-Key header makes a repeat answer with the first response. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    idempotencyKey?: { redisKey: string; fingerprint: string };
  }
}

export class IdempotencyMismatchError extends AppError {
  constructor() {
    super(422, 'IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with a different request (another route or body) in the last 24 hours; use a new key for a new request.');
  }
}

type Stored = { fp: string; state: 'pending' } | { fp: string; state: 'done'; status: number; body: string; location?: string };

/**
 * Idempotency-Key on every enqueue: the first request with a key (per
 * tenant) runs and its response is kept for 24 hours; a repeat with the same
 * route and body answers 200 with that response (the same jobId), even when
 * it arrives while the first is still running (it waits for it). The same key
 * with another request is a 422. A first request that fails (4xx, 5xx)
 * frees the key.
 */
export const idempotencyPlugin = fp(
  async (app: FastifyInstance) => {
    const keys = redisKeys(app.config.queuePrefix);

    const replay = (reply: FastifyReply, stored: Extract<Stored, { state: 'done' }>) => {
      reply.code(stored.status === 202 || stored.status === 201 ? 200 : stored.status);
      reply.header('content-type', 'application/json; charset=utf-8').header('idempotent-replayed', 'true');
      if (stored.location) reply.header('location', stored.location);
      return reply.send(stored.body);
    };

    // TENANT_MAX_IDEMPOTENCY_KEYS: the responses one tenant may have stored, counted in a sorted set of its
    // keys by expiry (the expired ones leave it as it is read).
    const maxKeys = app.config.tenantMaxIdempotencyKeys;
    const admitKey = async (tenant: string, redisKey: string) => {
      const index = keys.idempotencyIndex(tenant);
      const replies = await app.redis.multi().zremrangebyscore(index, '-inf', Date.now()).zcard(index).exec();
      const stored = Number(replies?.[1]?.[1] ?? 0);
      if (stored >= maxKeys) {
        await app.redis.del(redisKey);
        throw new AppError(
          429,
          'QUOTA_EXCEEDED',
          `Tenant "${tenant}" has ${stored} Idempotency-Key responses stored, at most ${maxKeys} (TENANT_MAX_IDEMPOTENCY_KEYS); they expire after 24 hours. Send the request without the header, or later.`,
          { 'retry-after': '60' },
        );
      }
      await app.redis.multi().zadd(index, Date.now() + PENDING_TTL_SECONDS * 1000, redisKey).pexpire(index, IDEMPOTENCY_TTL_SECONDS * 1000).exec();
    };

    app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
      if (!request.routeOptions.config.idempotent) return;
      const raw = request.headers['idempotency-key'];
      if (raw === undefined) return;
      const key = Array.isArray(raw) ? raw[0]! : raw;
      if (!KEY_PATTERN.test(key)) {
        throw new BadRequestError('headers.idempotency-key: must be 1-255 visible ASCII characters (a UUID is a good choice)', 'INVALID_IDEMPOTENCY_KEY');
      }
      const redisKey = keys.idempotency(request.principal.tenant, key);
      const fingerprint = createHash('sha256')
        .update(JSON.stringify([request.routeOptions.url, request.params, request.body ?? null]))
        .digest('hex');
      const deadline = Date.now() + PENDING_WAIT_MS;
      for (;;) {
        const taken = await app.redis.set(redisKey, JSON.stringify({ fp: fingerprint, state: 'pending' } satisfies Stored), 'EX', PENDING_TTL_SECONDS, 'NX');
        if (taken === 'OK') {
          await admitKey(request.principal.tenant, redisKey);
          request.idempotencyKey = { redisKey, fingerprint };
          return;
        }
        const current = await app.redis.get(redisKey);
        if (current === null) continue; // freed meanwhile: try to take it
        const stored = JSON.parse(current) as Stored;
        if (stored.fp !== fingerprint) throw new IdempotencyMismatchError();
        if (stored.state === 'done') return replay(reply, stored);
        if (Date.now() > deadline) {
          throw new ConflictError('A request with this Idempotency-Key is still running; try again in a moment.', 'IDEMPOTENCY_KEY_IN_USE');
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    });

    app.addHook('onSend', async (request, reply, payload) => {
      const held = request.idempotencyKey;
      if (!held) return payload;
      request.idempotencyKey = undefined;
      if (reply.statusCode >= 200 && reply.statusCode < 300 && typeof payload === 'string') {
        const location = reply.getHeader('location');
        const stored: Stored = { fp: held.fingerprint, state: 'done', status: reply.statusCode, body: payload, ...(typeof location === 'string' ? { location } : {}) };
        await app.redis.set(held.redisKey, JSON.stringify(stored), 'EX', IDEMPOTENCY_TTL_SECONDS).catch(() => {});
        await app.redis.zadd(keys.idempotencyIndex(request.principal.tenant), Date.now() + IDEMPOTENCY_TTL_SECONDS * 1000, held.redisKey).catch(() => {});
      } else {
        await app.redis.del(held.redisKey).catch(() => {});
        await app.redis.zrem(keys.idempotencyIndex(request.principal.tenant), held.redisKey).catch(() => {});
      }
      return payload;
    });
  },
  { name: 'idempotency', dependencies: ['services'] },
);
