import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QUEUE_NAMES, type QueueName } from '../src/jobs/index.js';
import { errors, okEnvelope } from '../src/http/schemas.js';

const counters = {
  processed: z.number().int().describe('attempts that ended'),
  completed: z.number().int(),
  failed: z.number().int().describe('attempts that failed for good'),
  retried: z.number().int().describe('failed attempts that run again'),
};
const perQueue = z.object({
  online: z.number().int().describe('worker processes of this queue that reported in the last 30 s'),
  concurrency: z.number().int().describe('jobs they can run at once, together'),
  active: z.number().int().describe('jobs running now'),
  ...counters,
});
const processSchema = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  startedAt: z.string(),
  lastSeen: z.string(),
  queues: z.record(z.string(), z.object({ concurrency: z.number().int(), ...counters })),
});

export default async function workerRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get(
    '',
    {
      onRequest: app.requireScope('metrics:read'),
      schema: {
        operationId: 'listWorkers',
        tags: ['workers'],
        summary: 'Worker processes per queue: online, concurrency, active now, and counters since each process started',
        security: [{ bearerAuth: [] }],
        response: {
          200: okEnvelope(z.object({ queues: z.object(Object.fromEntries(QUEUE_NAMES.map((q) => [q, perQueue])) as Record<QueueName, typeof perQueue>), processes: z.array(processSchema) })),
          ...errors(401, 403, 503),
        },
      },
    },
    async () => ({ success: true as const, data: await app.stats.workers() }),
  );
}
