import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../src/errors.js';
import { conflictForRemove } from '../src/job-store.js';
import { JOB_DATA_SCHEMAS, JOB_STATES, JOB_TYPES, jobOptionsSchema, QUEUE_NAMES, type JobType } from '../src/job-types.js';
import { allQueueCounts, sumCounts } from '../src/queue-stats.js';
import { errors, jobIdParams, jobViewSchema, okEnvelope, queueCountsSchema } from '../src/schemas.js';
import { visibleTenant } from '../src/tenant.js';

function submission<T extends JobType>(type: T) {
  return z.strictObject({
    type: z.literal(type),
    data: JOB_DATA_SCHEMAS[type],
    options: jobOptionsSchema.optional(),
  });
}

const submitBody = z.discriminatedUnion(
  'type',
  [
    submission('backup:manual'),
    submission('backup:scheduled'),
    submission('scan:full'),
    submission('scan:quick'),
    submission('update:server'),
  ],
  { error: () => `must be one of ${JOB_TYPES.join(', ')}` },
);

const submittedSchema = z.object({
  jobId: z.string(),
  queue: z.enum(QUEUE_NAMES),
  type: z.enum(JOB_TYPES),
  state: z.enum(JOB_STATES),
});

const listQuery = z.strictObject({
  queue: z.enum(QUEUE_NAMES).optional(),
  state: z.enum(JOB_STATES).optional(),
  type: z.enum(JOB_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('1..100, default 20'),
  cursor: z.string().max(400).optional().describe('nextCursor of the previous page'),
});

export default async function jobRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const read = app.requireScope('jobs:read');
  const write = app.requireScope('jobs:write');
  const security = [{ bearerAuth: [] }];

  app.post(
    '',
    {
      onRequest: write,
      schema: {
        tags: ['jobs'],
        summary: 'Enqueue a job',
        description: 'The job runs on a server of your inventory. Answers 202 with the job id and a Location header to poll.',
        security,
        body: submitBody,
        response: { 202: okEnvelope(submittedSchema), ...errors(400, 401, 403, 413, 415, 503) },
      },
    },
    async (request, reply) => {
      const { type, data, options } = request.body;
      const job = await app.jobs.submit(request.principal, type, data, options);
      reply.code(202).header('location', `/api/jobs/${job.jobId}`);
      return { success: true as const, data: { jobId: job.jobId, queue: job.queue, type: job.type, state: job.state } };
    },
  );

  app.get(
    '/stats/all',
    {
      onRequest: app.requireScope('metrics:read'),
      schema: {
        tags: ['jobs'],
        summary: 'Job counts per queue and in total (all tenants; needs metrics:read or admin)',
        security,
        response: {
          200: okEnvelope(z.object({ backup: queueCountsSchema, scan: queueCountsSchema, update: queueCountsSchema, total: queueCountsSchema })),
          ...errors(401, 403, 503),
        },
      },
    },
    async () => {
      const counts = await allQueueCounts(app.queues);
      return { success: true as const, data: { ...counts, total: sumCounts(Object.values(counts)) } };
    },
  );

  app.get(
    '/:id',
    {
      onRequest: read,
      schema: {
        tags: ['jobs'],
        summary: 'Read a job: state, progress, result or failure reason',
        security,
        params: jobIdParams,
        response: { 200: okEnvelope(jobViewSchema), ...errors(401, 403, 404, 503) },
      },
    },
    async (request) => {
      const job = await app.jobs.store.mustGet(request.params.id, visibleTenant(request.principal));
      return { success: true as const, data: job };
    },
  );

  app.get(
    '',
    {
      onRequest: read,
      schema: {
        tags: ['jobs'],
        summary: 'List your jobs, newest first, a page at a time',
        description:
          'Pass nextCursor back as cursor for the next page; it is null after the last page. With filters, a page may hold fewer than limit jobs while nextCursor is not null.',
        security,
        querystring: listQuery,
        response: { 200: okEnvelope(z.object({ jobs: z.array(jobViewSchema), nextCursor: z.string().nullable() })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { queue, state, type, limit, cursor } = request.query;
      const page = await app.jobs.store.list({ tenant: visibleTenant(request.principal), queue, state, type, limit, cursor });
      return { success: true as const, data: page };
    },
  );

  app.delete(
    '/:id',
    {
      onRequest: write,
      schema: {
        tags: ['jobs'],
        summary: 'Remove a job that is not running',
        security,
        params: jobIdParams,
        response: { 200: okEnvelope(z.object({ jobId: z.string(), removed: z.literal(true) })), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const outcome = await app.jobs.store.remove(id, visibleTenant(request.principal));
      if (outcome.status === 'missing') throw new NotFoundError(`Job "${id}"`, 'JOB_NOT_FOUND');
      if (outcome.status === 'active') throw conflictForRemove(id);
      return { success: true as const, data: { jobId: id, removed: true as const } };
    },
  );

  app.post(
    '/:id/retry',
    {
      onRequest: write,
      schema: {
        tags: ['jobs'],
        summary: 'Run a failed job again, with a fresh set of attempts',
        security,
        params: jobIdParams,
        response: { 200: okEnvelope(z.object({ jobId: z.string(), state: z.enum(JOB_STATES) })), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const outcome = await app.jobs.store.retry(id, visibleTenant(request.principal));
      if (outcome.status === 'missing') throw new NotFoundError(`Job "${id}"`, 'JOB_NOT_FOUND');
      if (outcome.status === 'not-failed') {
        throw new ConflictError(`Job "${id}" is ${outcome.state}; only a failed job can be retried.`, 'JOB_NOT_FAILED');
      }
      return { success: true as const, data: { jobId: id, state: outcome.state } };
    },
  );
}
