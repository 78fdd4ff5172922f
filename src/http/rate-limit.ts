import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../errors.js';
import { redisKeys } from '../redis/keys.js';
import { isApiRoute } from './api-route.js';

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
      redis: app.redis,
      nameSpace: redisKeys(app.config.queuePrefix).rateLimitNamespace,
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
