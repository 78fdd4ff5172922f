import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QUEUE_NAMES } from '../src/jobs/index.js';
import { errors, okEnvelope, queueCountsSchema } from '../src/http/schemas.js';

const indicatorStatus = z.enum(['healthy', 'warning', 'critical']);
const verdictSchema = z
  .object({
    status: indicatorStatus.describe('the worst of its indicators'),
    reasons: z.array(z.string()).describe('one sentence per indicator past its threshold, with the figure'),
    waiting: z.number().int(),
    active: z.number().int(),
    maxConcurrency: z.number().int().describe('summed concurrency of the worker processes serving the queue now'),
    activePercent: z.number().nullable().describe('active as % of maxConcurrency; warning from 80, critical above 95; null without a worker'),
    completedLastHour: z.number().int(),
    failedLastHour: z.number().int(),
    failureRatePercent: z.number().nullable().describe('failed as % of the jobs finished in the last hour; warning from 5, critical above 10; null when none finished'),
    averageWaitSec: z.number().nullable().describe('mean time from when a job could run to its start, over the 50 most recent starts; warning from 30 s, critical above 120 s'),
  })
  .describe('QueueVerdict');
const healthSchema = z.object({
  status: z.enum(['healthy', 'degraded', 'unhealthy']).describe('the worst queue: warning is degraded, critical is unhealthy'),
  message: z.string(),
  queues: z.object({ backup: verdictSchema, scan: verdictSchema, update: verdictSchema }),
});

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
        summary: 'Counts per queue, each queue\'s health by the operations guide\'s indicators, and an overall verdict (needs metrics:read or admin)',
        description:
          'Per queue (health.queues): active as % of max concurrency (warning 80-95 %, critical above), waiting jobs (1000-5000, above), ' +
          'failures in the last hour as % of finished (5-10 %, above), average wait before starting (30 s - 2 min, above), and jobs waiting with no worker (critical). ' +
          'health.status: the worst queue, healthy, degraded (a warning) or unhealthy (critical).',
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
