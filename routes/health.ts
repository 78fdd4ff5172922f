import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { API_VERSION } from '../src/version.js';
import { AppError } from '../src/errors.js';
import { errors, okEnvelope } from '../src/http/schemas.js';

const READY_TIMEOUT_MS = 1000;

export default async function healthRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/health',
    {
      schema: {
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
        tags: ['health'],
        summary: 'Readiness: Redis answers and the workers run (unless WORKERS=off)',
        response: {
          200: okEnvelope(z.object({ status: z.literal('ready'), redis: z.literal('ok'), workers: z.enum(['running', 'off']) })),
          ...errors(503),
        },
      },
    },
    async () => {
      const ping = await Promise.race([
        app.redis?.ping().then(() => true, () => false) ?? Promise.resolve(false),
        new Promise<boolean>((r) => setTimeout(() => r(false), READY_TIMEOUT_MS).unref()),
      ]);
      if (!ping) throw new AppError(503, 'NOT_READY', 'Redis does not answer.', { 'retry-after': '5' });
      const workers = app.workers ? Object.entries(app.workers) : [];
      const stopped = workers.filter(([, w]) => !w.isRunning()).map(([q]) => q);
      if (stopped.length) throw new AppError(503, 'NOT_READY', `Workers are not running for: ${stopped.join(', ')}.`, { 'retry-after': '5' });
      return { success: true as const, data: { status: 'ready' as const, redis: 'ok' as const, workers: app.workers ? ('running' as const) : ('off' as const) } };
    },
  );
}
