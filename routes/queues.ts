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

const finishedCounts = z.object({
  completed: z.number().describe('jobs that completed'),
  failed: z.number().describe('jobs that failed for good (attempts used up, or a failure retrying cannot fix)'),
  cancelled: z.number().describe('jobs stopped on request while they ran'),
});

const throughputSchema = z
  .object({
    queue: z.string(),
    windowMin: z.number().int(),
    from: z.string().describe('the start of the first minute of the window'),
    to: z.string().describe('now: the window ends with the current minute'),
    total: finishedCounts.describe('jobs finished over the window'),
    perMinute: finishedCounts.describe('the average per minute over the window (two decimals)'),
    buckets: z.array(z.object({ minute: z.string().describe('the start of the minute') }).extend(finishedCounts.shape)).describe('one per minute, oldest first'),
  })
  .describe('QueueThroughput');

const slowJobSchema = z
  .object({
    jobId: z.string(),
    type: z.string(),
    state: z.enum(['completed', 'failed', 'cancelled']),
    serverId: z.string().nullable(),
    tenant: z.string(),
    durationMs: z.number().int().describe('finishedOn - processedOn: its last attempt\'s run'),
    startedAt: z.string(),
    finishedAt: z.string(),
  })
  .describe('SlowJob');

const DAY_MS = 24 * 3600 * 1000;

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
        summary: 'Remove the waiting jobs of a queue (and the delayed ones with `delayed: true`), or with `delayMs` move them to delayed instead',
        description:
          'Without `delayMs` the waiting jobs are removed (lost). With `delayMs` (1 s to 30 days) each waiting job is kept, the same job (id, data, priority, attempts, tenant), and waits in `delayed` until now + delayMs; `POST /api/jobs/:id/promote` runs one earlier.',
        security,
        params: queueParams,
        body: z
          .strictObject({
            delayed: z.boolean().default(false).describe('also remove delayed jobs'),
            delayMs: z.number().int().min(1000).max(30 * DAY_MS).optional().describe('move the waiting jobs to delayed for this long instead of removing them (1000..2592000000)'),
          })
          .refine((b) => !(b.delayMs !== undefined && b.delayed), { message: 'delayMs keeps the waiting jobs: it cannot be combined with delayed: true, which removes jobs', path: ['delayed'] }),
        response: {
          200: okEnvelope(
            z.object({
              queue: z.string(),
              removed: z.object({ waiting: z.number().int(), delayed: z.number().int() }),
              movedToDelayed: z.number().int().optional().describe('with delayMs: the waiting jobs moved to delayed'),
              delayedUntil: z.string().optional().describe('with delayMs: when the moved jobs are due'),
            }),
          ),
          ...errors(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const { queue } = request.params;
      const { delayed, delayMs } = request.body;
      if (delayMs !== undefined) {
        const { moved, until } = await ops().drainToDelayed(queue, delayMs);
        return { success: true as const, data: { queue, removed: { waiting: 0, delayed: 0 }, movedToDelayed: moved, delayedUntil: until } };
      }
      return { success: true as const, data: { queue, removed: await ops().drain(queue, delayed) } };
    },
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
    '/:queue/remove-stuck',
    {
      ...common,
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'removeStuckJobs',
        tags,
        summary: 'Remove the stuck jobs entirely: their work is stopped, then they are deleted',
        description:
          'As unstick, the worker running each stuck job is asked to stop it, and a job still active 3 s later is moved by force (for good, not retried); then each is removed, with its listing entries. Answers the jobs removed. What they did is lost: `unstick` keeps them to retry.',
        security,
        params: queueParams,
        body: z.strictObject({ olderThanMs: olderThan(600_000) }),
        response: { 200: okEnvelope(z.object({ queue: z.string(), removed: z.number().int(), jobs: z.array(z.string()) })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { jobs } = await ops().removeStuck(request.params.queue, request.body.olderThanMs);
      return { success: true as const, data: { queue: request.params.queue, removed: jobs.length, jobs } };
    },
  );

  app.get(
    '/:queue/throughput',
    {
      ...common,
      schema: {
        operationId: 'getQueueThroughput',
        tags,
        summary: 'Jobs finished per minute over the last windowMin minutes (default 60), with the average',
        description:
          'Counted by the worker processes as jobs end (completed, failed for good, cancelled while running), per minute and kept 25 hours: exact however few finished jobs the queue retains.',
        security,
        params: queueParams,
        querystring: z.strictObject({ windowMin: z.coerce.number().int().min(1).max(1440).default(60).describe('minutes, the current one included (1..1440, default 60)') }),
        response: { 200: okEnvelope(throughputSchema), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await ops().throughput(request.params.queue, request.query.windowMin) }),
  );

  app.get(
    '/:queue/slow-jobs',
    {
      ...common,
      schema: {
        operationId: 'listSlowJobs',
        tags,
        summary: 'The slowest of the latest 500 finished jobs, longest run first',
        description: 'Among the 500 jobs that finished last (completed, failed or cancelled; as many as the queue still retains), those whose last run took longest.',
        security,
        params: queueParams,
        querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(10).describe('how many (1..100, default 10)') }),
        response: { 200: okEnvelope(z.object({ queue: z.string(), scanned: z.number().int().describe('finished jobs looked at'), jobs: z.array(slowJobSchema) })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({ success: true as const, data: { queue: request.params.queue, ...(await ops().slowJobs(request.params.queue, request.query.limit)) } }),
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
