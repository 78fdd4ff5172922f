import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { JOB_STATES, QUEUE_NAMES, type JobState, type QueueName } from '../src/jobs/index.js';
import { errors, okEnvelope } from '../src/http/schemas.js';
import { TENANT_PATTERN } from '../src/tenant.js';

const tenantParams = z.object({ tenant: z.string().regex(TENANT_PATTERN, 'must be a tenant name: 1-64 letters, digits, ".", "_" or "-"') });

const limitSchema = z
  .object({
    tenant: z.string(),
    default: z.number().int().describe('TENANT_MAX_ACTIVE'),
    override: z.number().int().nullable().describe('the temporary override, if one is set'),
    overrideExpiresAt: z.string().nullable(),
    effective: z
      .record(z.string(), z.number().int())
      .describe('per queue: the cap in force: TENANT_MAX_ACTIVE within TENANT_MAX_SHARE (half) of the queue\'s capacity; with an override, the override within the whole capacity'),
    throttle: z
      .object({
        max: z.number().int().describe('job starts allowed per perMs, in each throttled queue'),
        perMs: z.number().int(),
        queues: z.array(z.enum(QUEUE_NAMES)).describe('the throttled queues, each counted apart'),
        expiresAt: z.string().nullable().describe('when the throttle ends by itself'),
        started: z.record(z.string(), z.number().int()).describe('per throttled queue: the starts in the last perMs'),
      })
      .nullable()
      .describe('the temporary throttle of job starts (PUT /api/tenants/:tenant/throttle), if one is set'),
  })
  .describe('TenantLimit');

const stateCounts = z.object(Object.fromEntries(JOB_STATES.map((s) => [s, z.number().int()])) as Record<JobState, z.ZodNumber>);
const statsSchema = z.object({
  tenant: z.string(),
  queues: z.object(Object.fromEntries(QUEUE_NAMES.map((q) => [q, stateCounts])) as Record<QueueName, typeof stateCounts>),
  truncated: z.boolean().describe('the tenant has more than 20 000 jobs in the index; the newest 20 000 were counted'),
  limit: limitSchema,
});

/** Per-tenant counts and fair-scheduling limits: admin only. */
export default async function tenantRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const admin = app.requireScope('admin');
  const security = [{ bearerAuth: [] }];
  const tags = ['tenants'];

  app.get(
    '/stats',
    {
      onRequest: admin,
      schema: {
        operationId: 'listTenantStats',
        tags,
        summary: 'Per tenant and queue: waiting, active, completed, failed and delayed jobs, and the tenant\'s cap',
        security,
        querystring: z.strictObject({ tenant: tenantParams.shape.tenant.optional().describe('only this tenant') }),
        response: { 200: okEnvelope(z.array(statsSchema)), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.tenants.stats(request.query.tenant) }),
  );

  app.get(
    '/:tenant/limits',
    { onRequest: admin, schema: { operationId: 'getTenantLimits', tags, summary: 'A tenant\'s cap of active jobs per queue, and its throttle of job starts', security, params: tenantParams, response: { 200: okEnvelope(limitSchema), ...errors(400, 401, 403, 503) } } },
    async (request) => ({ success: true as const, data: await app.tenants.limit(request.params.tenant) }),
  );

  app.put(
    '/:tenant/limits',
    {
      onRequest: admin,
      schema: {
        operationId: 'setTenantLimits',
        tags,
        summary: 'Override TENANT_MAX_ACTIVE for one tenant, for a while',
        description:
          'The override ends by itself after ttlSeconds (default one hour), or with DELETE. It is an operator\'s decision: it replaces TENANT_MAX_ACTIVE and the share cap (TENANT_MAX_SHARE), and may lift the tenant above half of a queue\'s capacity, never above the whole capacity.',
        security,
        params: tenantParams,
        body: z.strictObject({
          maxActive: z.number().int().min(1).max(10_000),
          ttlSeconds: z.number().int().min(1).max(30 * 24 * 3600).default(3600).describe('how long the override lasts (default 3600)'),
        }),
        response: { 200: okEnvelope(limitSchema), ...errors(400, 401, 403, 415, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.tenants.setLimit(request.params.tenant, request.body.maxActive, request.body.ttlSeconds) }),
  );

  app.put(
    '/:tenant/throttle',
    {
      onRequest: admin,
      schema: {
        operationId: 'setTenantThrottle',
        tags,
        summary: 'Throttle one tenant\'s job starts for a while: at most max per perMs',
        description:
          'At most `max` of the tenant\'s jobs start per `perMs` (a sliding window) in `queue`, or in each queue (counted apart) when no queue is named. ' +
          'A job over it goes back to `delayed` until the window lets it start (not an attempt). It replaces the tenant\'s throttle, and ends by itself after ttlSeconds (default one hour), or with DELETE.',
        security,
        params: tenantParams,
        body: z.strictObject({
          max: z.number().int().min(1).max(1_000_000).describe('job starts allowed per perMs'),
          perMs: z.number().int().min(1000).max(24 * 3600 * 1000).default(60_000).describe('the window, in ms (default 60000)'),
          ttlSeconds: z.number().int().min(1).max(30 * 24 * 3600).default(3600).describe('how long the throttle lasts (default 3600)'),
          queue: z.enum(QUEUE_NAMES).optional().describe('only this queue; every queue when absent'),
        }),
        response: { 200: okEnvelope(limitSchema), ...errors(400, 401, 403, 415, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.tenants.setThrottle(request.params.tenant, request.body) }),
  );

  app.delete(
    '/:tenant/throttle',
    { onRequest: admin, schema: { operationId: 'resetTenantThrottle', tags, summary: 'End a tenant\'s throttle of job starts', security, params: tenantParams, response: { 200: okEnvelope(limitSchema), ...errors(400, 401, 403, 503) } } },
    async (request) => ({ success: true as const, data: await app.tenants.resetThrottle(request.params.tenant) }),
  );

  app.delete(
    '/:tenant/limits',
    { onRequest: admin, schema: { operationId: 'resetTenantLimits', tags, summary: 'Back to TENANT_MAX_ACTIVE for this tenant', security, params: tenantParams, response: { 200: okEnvelope(limitSchema), ...errors(400, 401, 403, 503) } } },
    async (request) => ({ success: true as const, data: await app.tenants.resetLimit(request.params.tenant) }),
  );
}
