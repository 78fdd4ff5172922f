import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CLEANABLE_STATES } from '../src/services/queue-ops.js';
import { emptyBodyAsObject, errors, jobViewSchema, okEnvelope, queueCountsSchema, queueParams } from '../src/http/schemas.js';

const statusSchema = z
  .object({
    queue: z.string(),
    paused: z.boolean(),
    workers: z.number().int().describe('worker connections online for this queue'),
    concurrency: z.number().int().describe('jobs one worker process runs at once'),
    rateLimit: z
      .object({ max: z.number().int(), duration: z.number().int() })
      .nullable()
      .describe('QUEUE_RATE_LIMITS: at most max jobs start per duration ms, across all workers; null: no limit'),
    counts: queueCountsSchema,
  })
  .describe('QueueStatus');

const olderThan = (def: number) =>
  z.coerce.number().int().min(0).max(365 * 24 * 3600 * 1000).default(def).describe(`milliseconds (default ${def})`);

/** Queue-wide operations: admin only. */
export default async function queueRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const admin = app.requireScope('admin');
  const security = [{ bearerAuth: [] }];
  const tags = ['queues'];
  const common = { onRequest: admin };
  const ops = () => app.queueOps;

  app.get(
    '',
    { ...common, schema: { operationId: 'listQueues', tags, summary: 'Every queue: counts, paused, workers online', security, response: { 200: okEnvelope(z.array(statusSchema)), ...errors(401, 403, 503) } } },
    async () => ({ success: true as const, data: await ops().all() }),
  );

  app.get(
    '/:queue',
    { ...common, schema: { operationId: 'getQueue', tags, summary: 'One queue: counts, paused, workers online', security, params: queueParams, response: { 200: okEnvelope(statusSchema), ...errors(400, 401, 403, 503) } } },
    async (request) => ({ success: true as const, data: await ops().status(request.params.queue) }),
  );

  app.post(
    '/:queue/pause',
    {
      ...common,
      schema: {
        operationId: 'pauseQueue',
        tags,
        summary: 'Pause a queue: workers take no new jobs (running ones finish); new jobs wait',
        security,
        params: queueParams,
        response: { 200: okEnvelope(statusSchema), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await ops().pause(request.params.queue) }),
  );

  app.post(
    '/:queue/resume',
    { ...common, schema: { operationId: 'resumeQueue', tags, summary: 'Resume a paused queue', security, params: queueParams, response: { 200: okEnvelope(statusSchema), ...errors(400, 401, 403, 503) } } },
    async (request) => ({ success: true as const, data: await ops().resume(request.params.queue) }),
  );

  app.post(
    '/:queue/drain',
    {
      ...common,
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'drainQueue',
        tags,
        summary: 'Remove the waiting jobs of a queue (and the delayed ones with `delayed: true`)',
        security,
        params: queueParams,
        body: z.strictObject({ delayed: z.boolean().default(false).describe('also remove delayed jobs') }),
        response: { 200: okEnvelope(z.object({ queue: z.string(), removed: z.object({ waiting: z.number().int(), delayed: z.number().int() }) })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({
      success: true as const,
      data: { queue: request.params.queue, removed: await ops().drain(request.params.queue, request.body.delayed) },
    }),
  );

  app.post(
    '/:queue/clean',
    {
      ...common,
      schema: {
        operationId: 'cleanQueue',
        tags,
        summary: 'Remove jobs of one state older than olderThanMs (running jobs are never cleaned)',
        security,
        params: queueParams,
        body: z.strictObject({
          state: z.enum(CLEANABLE_STATES),
          olderThanMs: olderThan(0),
          limit: z.number().int().min(1).max(100_000).default(1000).describe('at most this many (default 1000)'),
        }),
        response: { 200: okEnvelope(z.object({ queue: z.string(), state: z.string(), removed: z.number().int(), jobs: z.array(z.string()) })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { state, olderThanMs, limit } = request.body;
      const jobs = await ops().clean(request.params.queue, state, olderThanMs, limit);
      return { success: true as const, data: { queue: request.params.queue, state, removed: jobs.length, jobs } };
    },
  );

  app.get(
    '/:queue/stuck',
    {
      ...common,
      schema: {
        operationId: 'listStuckJobs',
        tags,
        summary: 'Jobs active for longer than olderThanMs (default 10 minutes), longest first',
        security,
        params: queueParams,
        querystring: z.strictObject({ olderThanMs: olderThan(600_000) }),
        response: { 200: okEnvelope(z.object({ queue: z.string(), olderThanMs: z.number().int(), jobs: z.array(jobViewSchema) })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({
      success: true as const,
      data: { queue: request.params.queue, olderThanMs: request.query.olderThanMs, jobs: await ops().stuck(request.params.queue, request.query.olderThanMs) },
    }),
  );

  app.post(
    '/:queue/unstick',
    {
      ...common,
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'unstickJobs',
        tags,
        summary: 'Move the stuck jobs to failed, so they can be retried',
        description:
          'The worker running each stuck job is asked to stop it; a job still active 3 s later (its worker is hung or gone) is moved to failed by force. The reason says it was unstuck.',
        security,
        params: queueParams,
        body: z.strictObject({ olderThanMs: olderThan(600_000) }),
        response: { 200: okEnvelope(z.object({ queue: z.string(), moved: z.number().int(), jobs: z.array(z.string()) })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { jobs } = await ops().unstick(request.params.queue, request.body.olderThanMs);
      return { success: true as const, data: { queue: request.params.queue, moved: jobs.length, jobs } };
    },
  );

  app.post(
    '/:queue/retry',
    {
      ...common,
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'retryFailedJobs',
        tags,
        summary: 'Retry failed jobs: all, or those whose reason contains errorContains',
        security,
        params: queueParams,
        body: z.strictObject({
          errorContains: z.string().min(1).max(500).optional().describe('case-insensitive part of the failure reason'),
          limit: z.number().int().min(1).max(100_000).default(1000).describe('at most this many, newest first (default 1000)'),
          dryRun: z.boolean().default(false).describe('only count what would be retried'),
        }),
        response: {
          200: okEnvelope(z.object({ queue: z.string(), dryRun: z.boolean(), matched: z.number().int(), retried: z.number().int(), jobs: z.array(z.string()) })),
          ...errors(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const { errorContains, limit, dryRun } = request.body;
      const out = await ops().retryFailed(request.params.queue, { errorContains, limit, dryRun });
      return { success: true as const, data: { queue: request.params.queue, dryRun, ...out } };
    },
  );
}
