import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { API_VERSION } from '../src/version.js';
import { errors, okEnvelope } from '../src/http/schemas.js';
import { notReady } from '../src/services/stats.js';

export default async function healthRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/health',
    {
      schema: {
        operationId: 'getHealth',
        tags: ['health'],
        summary: 'Liveness: the process answers',
        response: { 200: okEnvelope(z.object({ status: z.literal('ok'), version: z.string(), uptimeSec: z.number() })) },
      },
    },
    async () => ({ success: true as const, data: { status: 'ok' as const, version: API_VERSION, uptimeSec: Math.round(process.uptime()) } }),
  );

  app.get(
    '/ready',
    {
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Readiness: Redis answers and the workers run (unless WORKERS=off)',
        response: {
          200: okEnvelope(z.object({ status: z.literal('ready'), redis: z.literal('ok'), workers: z.enum(['running', 'off']) })),
          ...errors(503),
        },
      },
    },
    async () => {
      // A docs-only app (OpenAPI generation) has no Redis, hence no stats service: never ready.
      if (!app.hasDecorator('stats')) throw notReady('Redis does not answer.');
      return { success: true as const, data: await app.stats.ready() };
    },
  );
}
