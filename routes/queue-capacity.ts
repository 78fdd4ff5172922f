import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errors, okEnvelope, queueParams } from '../src/http/schemas.js';

const concurrencySchema = z
  .object({
    queue: z.string(),
    configured: z.number().int().describe('QUEUE_CONCURRENCY: jobs of the queue one worker process runs at once, as configured'),
    override: z.number().int().nullable().describe('set at run time (PUT), over the configuration; null: none'),
    concurrency: z.number().int().describe('what every worker process runs once it has followed: the override, else the configured value'),
    followWithinMs: z.number().int().describe('every worker process follows a change within this'),
    processes: z
      .array(z.object({ id: z.string(), host: z.string(), pid: z.number().int(), concurrency: z.number().int().describe('what the process last reported running') }))
      .describe('the worker processes that reported in the last 30 s'),
    total: z.number().int().describe('their sum: jobs of the queue that may run at once now'),
  })
  .describe('QueueConcurrency');

/** worker:scale: a queue's concurrency, changed at run time for every worker process (admin only). */
export default async function queueCapacityRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const common = { onRequest: app.requireScope('admin') };
  const security = [{ bearerAuth: [] }];
  const tags = ['queues'];

  app.get(
    '/:queue/concurrency',
    {
      ...common,
      schema: {
        operationId: 'getQueueConcurrency',
        tags,
        summary: 'A queue\'s concurrency: configured, set at run time, and what each live worker process runs',
        security,
        params: queueParams,
        response: { 200: okEnvelope(concurrencySchema), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.capacity.get(request.params.queue) }),
  );

  app.put(
    '/:queue/concurrency',
    {
      ...common,
      schema: {
        operationId: 'setQueueConcurrency',
        tags,
        summary: 'Run this many jobs of the queue at once in every worker process, from now on',
        description:
          'Every worker process, running or started later, follows it within `followWithinMs` (2 s) and reports it in GET /api/workers; it holds until DELETE. ' +
          'A higher concurrency starts waiting jobs at once; a lower one lets running jobs finish. Fair scheduling\'s caps follow the new capacity (worker processes × concurrency).',
        security,
        params: queueParams,
        body: z.strictObject({ concurrency: z.number().int().min(1).max(1000).describe('jobs of the queue one worker process runs at once (1..1000)') }),
        response: { 200: okEnvelope(concurrencySchema), ...errors(400, 401, 403, 415, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.capacity.set(request.params.queue, request.body.concurrency) }),
  );

  app.delete(
    '/:queue/concurrency',
    {
      ...common,
      schema: {
        operationId: 'resetQueueConcurrency',
        tags,
        summary: 'Back to the configuration\'s concurrency (QUEUE_CONCURRENCY) in every worker process',
        security,
        params: queueParams,
        response: { 200: okEnvelope(concurrencySchema), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.capacity.reset(request.params.queue) }),
  );
}
