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
    effective: z.record(z.string(), z.number().int()).describe('per queue: the cap in force, never more than half of the queue\'s capacity'),
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
    { onRequest: admin, schema: { operationId: 'getTenantLimits', tags, summary: 'A tenant\'s cap of active jobs per queue', security, params: tenantParams, response: { 200: okEnvelope(limitSchema), ...errors(400, 401, 403, 503) } } },
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
        description: 'The override ends by itself after ttlSeconds (default one hour), or with DELETE. It never lifts the cap above half of a queue\'s capacity.',
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

  app.delete(
    '/:tenant/limits',
    { onRequest: admin, schema: { operationId: 'resetTenantLimits', tags, summary: 'Back to TENANT_MAX_ACTIVE for this tenant', security, params: tenantParams, response: { 200: okEnvelope(limitSchema), ...errors(400, 401, 403, 503) } } },
    async (request) => ({ success: true as const, data: await app.tenants.resetLimit(request.params.tenant) }),
  );
}
