import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';
import type { Redis } from 'ioredis';
import { redisKeys } from '../redis/keys.js';
import { RATE_COUNT_LUA } from '../redis/lua/rate-limit.js';
import { isApiRoute } from './api-route.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiRateCount(key: string, n: number, windowMs: number): Promise<[number, number]>;
  }
}

type Counted = (err: Error | null, res?: { current: number; ttl: number }) => void;

/** What one process knows of a key's window: Redis's count at its last answer, and the requests counted since. */
type Known = {
  /** The count Redis answered last (every process's requests up to then). */
  count: number;
  /** When the window ends, by this process's clock (Redis's TTL at that answer, from when it came). */
  endsAt: number;
  /** Requests answered here and sent to Redis, not yet in `count`. */
  sent: number;
};

/** A request is answered from what the process knows only while the window is this far from its end, and its count under half the budget. */
const WINDOW_END_MARGIN_MS = 100;

/**
 * A @fastify/rate-limit store that counts in Redis what its own RedisStore
 * counts (one key per route and tenant, a fixed window), but the requests of
 * one key that this process reads in one turn of the event loop are counted
 * with one script call (INCRBY n), each learning its own place in the count.
 * Under load that is one call for fifty requests of a tenant instead of fifty.
 *
 * A tenant far below its budget does not wait for that call: while the count
 * Redis last answered, plus what this process counted since, is at most half
 * the budget (and the window is not about to end), the request is let through
 * at once and counted with the next call. Only the first request of a window,
 * and every request past half the budget, waits for Redis's count. One
 * process counts exactly; with several, a request can slip past the limit
 * only if the others counted more than half the budget within one round trip.
 */
function turnCountingStore(redis: Redis, namespace: string) {
  redis.defineCommand('jobsapiRateCount', { numberOfKeys: 1, lua: RATE_COUNT_LUA });
  return class TurnCountingStore {
    private pending = new Map<string, { windowMs: number; callbacks: Counted[]; early: number }>();
    private readonly known = new Map<string, Known>();
    private scheduled = false;

    constructor(
      _options?: unknown,
      private readonly prefix = namespace,
    ) {}

    incr(id: string, cb: Counted, windowMs: number, max: number): void {
      const key = this.prefix + id;
      let entry = this.pending.get(key);
      if (!entry) this.pending.set(key, (entry = { windowMs, callbacks: [], early: 0 }));
      const known = this.known.get(key);
      const now = Date.now();
      const counted = known ? known.count + known.sent + entry.early + 1 : Infinity;
      if (known && now < known.endsAt - WINDOW_END_MARGIN_MS && counted * 2 <= max) {
        entry.early += 1;
        cb(null, { current: counted, ttl: known.endsAt - now });
      } else {
        entry.callbacks.push(cb);
      }
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    }

    private flush(): void {
      const batch = this.pending;
      this.pending = new Map();
      this.scheduled = false;
      for (const [key, { windowMs, callbacks, early }] of batch) {
        const n = early + callbacks.length;
        const known = this.known.get(key);
        if (known) known.sent += early;
        redis.jobsapiRateCount(key, n, windowMs).then(
          ([current, ttl]) => {
            const now = this.known.get(key);
            if (now) now.sent -= early;
            // Answers come back in the order the calls were sent: this one holds every count sent before it.
            this.known.set(key, { count: current, endsAt: Date.now() + ttl, sent: now?.sent ?? 0 });
            // Those let through early came first; the waiting ones take the places after them.
            callbacks.forEach((cb, i) => cb(null, { current: current - callbacks.length + i + 1, ttl }));
          },
          (err: Error) => {
            this.known.delete(key);
            callbacks.forEach((cb) => cb(err));
          },
        );
      }
      // Keys of windows long gone are forgotten (a process sees many tenants over its life).
      if (this.known.size > 10_000) {
        const now = Date.now();
        for (const [key, k] of this.known) if (k.endsAt < now && k.sent === 0) this.known.delete(key);
      }
    }

    /** A route with a limit of its own counts under its own keys (as RedisStore's child does). */
    child(routeOptions: RouteOptions & { path: string; prefix: string }): TurnCountingStore {
      const info = (routeOptions as { routeInfo?: { method?: unknown; url?: string } }).routeInfo ?? {};
      return new TurnCountingStore(undefined, `${this.prefix}${String(info.method)}${info.url}-`);
    }
  };
}

/**
 * Per-tenant request rate limiting on /api (API_RATE_LIMIT requests per
 * API_RATE_WINDOW_MS), counted in Redis so that every API process shares one
 * budget per tenant. It runs once the token is verified (preHandler), so the
 * key is the tenant, not the address. Over the limit: 429 RATE_LIMITED with
 * Retry-After. /health, /ready and /docs are never limited; if Redis cannot
 * count, requests pass (the 503 of an unreachable Redis comes first anyway).
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance) => {
    const { max, windowMs } = app.config.apiRateLimit;
    if (max === 0) return;
    await app.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max,
      timeWindow: windowMs,
      store: turnCountingStore(app.redis, redisKeys(app.config.queuePrefix).rateLimitNamespace),
      skipOnError: true,
      keyGenerator: (request: FastifyRequest) => (request.principal ? `tenant:${request.principal.tenant}` : `ip:${request.ip}`),
      // The route, not the raw URL: `/%61pi/jobs` is routed to /api/jobs and must be counted as it.
      allowList: (request: FastifyRequest) => !isApiRoute(request),
      addHeadersOnExceeding: { 'x-ratelimit-limit': true, 'x-ratelimit-remaining': true, 'x-ratelimit-reset': true },
      errorResponseBuilder: (request: FastifyRequest, context) =>
        new AppError(
          429,
          'RATE_LIMITED',
          `Too many requests for tenant "${request.principal?.tenant ?? request.ip}": at most ${context.max} per ${Math.round(windowMs / 1000)} s. Retry after ${context.after} (the Retry-After header says how many seconds).`,
        ),
    });
  },
  { name: 'rate-limit', dependencies: ['services'] },
);
