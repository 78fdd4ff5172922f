import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QUEUE_NAMES } from '../src/jobs/index.js';
import { errors, okEnvelope, queueCountsSchema } from '../src/http/schemas.js';

const healthSchema = z.object({ status: z.enum(['healthy', 'degraded', 'unhealthy']), message: z.string() });

export default async function metricsRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const security = [{ bearerAuth: [] }];

  app.get(
    '/queues',
    {
      onRequest: app.requireScope('metrics:read'),
      schema: {
        operationId: 'getQueueMetrics',
        tags: ['metrics'],
        summary: 'Counts per queue and an overall health verdict (needs metrics:read or admin)',
        description:
          'healthy: fewer than 1000 waiting and under 5 % failures in the last hour; degraded: up to 5000 waiting or up to 10 % failures; unhealthy beyond.',
        security,
        response: {
          200: okEnvelope(z.object({ backup: queueCountsSchema, scan: queueCountsSchema, update: queueCountsSchema, health: healthSchema })),
          ...errors(401, 403, 503),
        },
      },
    },
    async () => ({ success: true as const, data: await app.stats.queueHealth() }),
  );

  app.get(
    '/system',
    {
      onRequest: app.requireScope('admin'),
      schema: {
        operationId: 'getSystemMetrics',
        tags: ['metrics'],
        summary: 'Process, Redis and queue health (admin)',
        security,
        response: {
          200: okEnvelope(
            z.object({
              version: z.string(),
              process: z.object({ pid: z.number(), node: z.string(), uptimeSec: z.number(), rssBytes: z.number(), heapUsedBytes: z.number() }),
              redis: z.object({
                status: z.string(),
                version: z.string().nullable(),
                usedMemoryBytes: z.number().nullable(),
                connectedClients: z.number().nullable(),
                maxmemoryPolicy: z.string().nullable(),
              }),
              workers: z.object({ enabled: z.boolean(), running: z.array(z.enum(QUEUE_NAMES)) }),
              queues: z.object({ backup: queueCountsSchema, scan: queueCountsSchema, update: queueCountsSchema, health: healthSchema }),
            }),
          ),
          ...errors(401, 403, 503),
        },
      },
    },
    async () => ({ success: true as const, data: await app.stats.system() }),
  );
}
