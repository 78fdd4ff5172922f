import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Server } from '../src/inventory.js';
import { backupDataSchema, jobOptionsSchema, QUEUE_NAMES, serverIdSchema } from '../src/job-types.js';
import { errors, okEnvelope } from '../src/schemas.js';
import { visibleTenant } from '../src/tenant.js';

const serverSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    tenant: z.string(),
    host: z.string(),
    kinds: z.array(z.enum(QUEUE_NAMES)).describe('the kinds of job this server declares'),
    backup: z.object({ paths: z.array(z.string()), exclude: z.array(z.string()) }).nullable(),
    scan: z.object({ ports: z.array(z.number().int()), timeoutMs: z.number().int() }).nullable(),
    update: z.object({ timeoutSec: z.number().int() }).nullable().describe('the command itself is never shown'),
  })
  .describe('Server');

function present(s: Server): z.output<typeof serverSchema> {
  return {
    id: s.id,
    name: s.name ?? s.id,
    tenant: s.tenant,
    host: s.host,
    kinds: QUEUE_NAMES.filter((k) => s[k] !== undefined),
    backup: s.backup ? { paths: s.backup.paths, exclude: s.backup.exclude } : null,
    scan: s.scan ? { ports: s.scan.ports, timeoutMs: s.scan.timeoutMs } : null,
    update: s.update ? { timeoutSec: s.update.timeoutSec } : null,
  };
}

const params = z.object({ id: serverIdSchema.describe('a server id of the inventory') });
const options = { options: jobOptionsSchema.optional() };

const backupBody = z
  .strictObject({ ...backupDataSchema.omit({ serverId: true }).shape, ...options })
  ;
const scanBody = z
  .strictObject({ scan_type: z.enum(['full', 'quick']).default('full').describe('quick: connectivity of the first port; full: every port'), ...options })
  ;
const updateBody = z.strictObject({ ...options });

/** These bodies are optional: `curl -X POST` without `-d` means "all defaults". */
async function emptyBodyAsObject(request: { body: unknown }) {
  if (request.body === undefined || request.body === null) request.body = {};
}

const pending = (idName: 'backupId' | 'scanId' | 'updateId') =>
  okEnvelope(z.object({ [idName]: z.string(), jobId: z.string(), status: z.literal('pending') }));

export default async function serverRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const read = app.requireScope('jobs:read');
  const write = app.requireScope('jobs:write');
  const security = [{ bearerAuth: [] }];
  const enqueueErrors = errors(400, 401, 403, 404, 413, 415, 503);

  app.get(
    '',
    {
      onRequest: read,
      schema: { tags: ['servers'], summary: 'The servers your token may act on', security, response: { 200: okEnvelope(z.array(serverSchema)), ...errors(401, 403) } },
    },
    async (request) => ({ success: true as const, data: app.inventory.list(visibleTenant(request.principal)).map(present) }),
  );

  app.get(
    '/:id',
    {
      onRequest: read,
      schema: { tags: ['servers'], summary: 'One server of the inventory', security, params, response: { 200: okEnvelope(serverSchema), ...errors(401, 403, 404) } },
    },
    async (request) => ({ success: true as const, data: present(app.jobs.server(request.principal, request.params.id)) }),
  );

  app.post(
    '/:id/backup',
    {
      onRequest: write,
      preValidation: emptyBodyAsObject,
      schema: {
        tags: ['servers'],
        summary: 'Back up the server\'s declared paths',
        security,
        params,
        body: backupBody,
        response: { 202: pending('backupId'), ...enqueueErrors },
      },
    },
    async (request, reply) => {
      const server = app.jobs.server(request.principal, request.params.id);
      const { options: opts, ...data } = request.body;
      const job = await app.jobs.submit(request.principal, 'backup:manual', { serverId: server.id, ...data }, opts);
      reply.code(202).header('location', `/api/jobs/${job.jobId}`);
      return { success: true as const, data: { backupId: job.recordId, jobId: job.jobId, status: 'pending' as const } };
    },
  );

  app.post(
    '/:id/scan',
    {
      onRequest: write,
      preValidation: emptyBodyAsObject,
      schema: { tags: ['servers'], summary: 'Check the server\'s declared ports', security, params, body: scanBody, response: { 202: pending('scanId'), ...enqueueErrors } },
    },
    async (request, reply) => {
      const server = app.jobs.server(request.principal, request.params.id);
      const type = request.body.scan_type === 'quick' ? 'scan:quick' : 'scan:full';
      const job = await app.jobs.submit(request.principal, type, { serverId: server.id }, request.body.options);
      reply.code(202).header('location', `/api/jobs/${job.jobId}`);
      return { success: true as const, data: { scanId: job.recordId, jobId: job.jobId, status: 'pending' as const } };
    },
  );

  app.post(
    '/:id/update',
    {
      onRequest: write,
      preValidation: emptyBodyAsObject,
      schema: { tags: ['servers'], summary: 'Run the server\'s declared update command', security, params, body: updateBody, response: { 202: pending('updateId'), ...enqueueErrors } },
    },
    async (request, reply) => {
      const server = app.jobs.server(request.principal, request.params.id);
      const job = await app.jobs.submit(request.principal, 'update:server', { serverId: server.id }, request.body.options);
      reply.code(202).header('location', `/api/jobs/${job.jobId}`);
      return { success: true as const, data: { updateId: job.recordId, jobId: job.jobId, status: 'pending' as const } };
    },
  );
}
