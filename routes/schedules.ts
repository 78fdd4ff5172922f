import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { JOB_DATA_SCHEMAS, JOB_TYPES, jobOptionFields, QUEUE_NAMES, SCHEDULABLE_JOB_TYPES, type JobType } from '../src/jobs/index.js';
import { scheduleIdSchema } from '../src/services/schedules.js';
import { errors, okEnvelope } from '../src/http/schemas.js';
import { TENANT_PATTERN } from '../src/tenant.js';


function scheduleBody<T extends JobType>(type: T) {
  return z.strictObject({
    id: scheduleIdSchema,
    type: z.literal(type),
    data: JOB_DATA_SCHEMAS[type],
    cron: z
      .string()
      .min(1)
      .max(200)
      .describe('5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g. "0 2 * * *" for 02:00 every day'),
    tz: z.string().min(1).max(100).optional().describe('IANA time zone the cron pattern is read in (default: the server\'s)'),
    options: jobOptionFields.pick({ priority: true, attempts: true }).optional(),
  });
}

type TypedScheduleBody = { [T in JobType]: ReturnType<typeof scheduleBody<T>> }[JobType];

const bodySchema = z.discriminatedUnion(
  'type',
  SCHEDULABLE_JOB_TYPES.map((t) => scheduleBody(t)) as [TypedScheduleBody, ...TypedScheduleBody[]],
  { error: () => `must be one of ${SCHEDULABLE_JOB_TYPES.join(', ')}` },
);

const scheduleSchema = z
  .object({
    id: z.string(),
    tenant: z.string(),
    queue: z.enum(QUEUE_NAMES),
    type: z.enum(JOB_TYPES),
    data: z.unknown(),
    cron: z.string(),
    tz: z.string().nullable(),
    options: z.object({ priority: z.number().int().optional(), attempts: z.number().int().optional() }),
    runs: z.number().int().describe('jobs the schedule has made so far'),
    next: z.array(z.string()).describe('the next five run times (ISO 8601)'),
  })
  .describe('Schedule');

const idParams = z.object({ id: scheduleIdSchema });
const tenantQuery = z.strictObject({
  tenant: z.string().regex(TENANT_PATTERN).optional().describe('admin only: the tenant whose schedule this is (default: your own)'),
});

export default async function scheduleRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const read = app.requireScope('jobs:read');
  const write = app.requireScope('jobs:write');
  const security = [{ bearerAuth: [] }];
  const tags = ['schedules'];

  app.post(
    '',
    {
      onRequest: write,
      schema: {
        operationId: 'upsertSchedule',
        tags,
        summary: 'Create or replace a cron schedule that enqueues a job at every tick',
        description:
          'The job is checked like any enqueue (server, tenant, kind) when the schedule is made. Each run is a job of its own, with an id `repeat:…`, listed once it starts. A bad cron pattern or time zone is a 400 INVALID_CRON that says why. 201 when created, 200 when an existing schedule of that id was replaced.',
        security,
        body: bodySchema,
        response: { 200: okEnvelope(scheduleSchema), 201: okEnvelope(scheduleSchema), ...errors(400, 401, 403, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const { created, schedule } = await app.schedules.upsert(request.principal, request.body);
      reply.code(created ? 201 : 200).header('location', `/api/schedules/${schedule.id}`);
      return { success: true as const, data: schedule };
    },
  );

  app.get(
    '',
    {
      onRequest: read,
      schema: { operationId: 'listSchedules', tags, summary: 'Your schedules (admin: every tenant\'s), with their next run times', security, response: { 200: okEnvelope(z.array(scheduleSchema)), ...errors(401, 403, 503) } },
    },
    async (request) => ({ success: true as const, data: await app.schedules.list(request.principal) }),
  );

  app.get(
    '/:id',
    {
      onRequest: read,
      schema: { operationId: 'getSchedule', tags, summary: 'One schedule, with its next five run times', security, params: idParams, querystring: tenantQuery, response: { 200: okEnvelope(scheduleSchema), ...errors(400, 401, 403, 404, 503) } },
    },
    async (request) => ({ success: true as const, data: await app.schedules.get(request.principal, request.params.id, request.query.tenant) }),
  );

  app.delete(
    '/:id',
    {
      onRequest: write,
      schema: {
        operationId: 'removeSchedule',
        tags,
        summary: 'Delete a schedule (jobs it already made stay)',
        security,
        params: idParams,
        querystring: tenantQuery,
        response: { 200: okEnvelope(z.object({ id: z.string(), removed: z.literal(true) })), ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      await app.schedules.remove(request.principal, request.params.id, request.query.tenant);
      return { success: true as const, data: { id: request.params.id, removed: true as const } };
    },
  );
}
