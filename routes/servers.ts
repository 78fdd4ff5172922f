import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Server } from '../src/inventory.js';
import {
  backupDataSchema,
  backupIdSchema,
  backupListingSchema,
  restoreListingSchema,
  jobOptionsSchema,
  QUEUE_NAMES,
  scanRecordSchema,
  serverIdSchema,
  type ScanResult,
} from '../src/jobs/index.js';
import { emptyBodyAsObject, errors, idempotentHeaders, okEnvelope } from '../src/http/schemas.js';

const serverSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    tenant: z.string(),
    host: z.string(),
    kinds: z.array(z.enum(QUEUE_NAMES)).describe('the kinds of job this server declares'),
    backup: z.object({ paths: z.array(z.string()), exclude: z.array(z.string()) }).nullable(),
    scan: z
      .object({
        ports: z.array(z.number().int()),
        expect: z.array(z.number().int()).nullable().describe('the ports that should be open; null when not declared'),
        timeoutMs: z.number().int(),
      })
      .nullable(),
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
    scan: s.scan ? { ports: s.scan.ports, expect: s.scan.expect ?? null, timeoutMs: s.scan.timeoutMs } : null,
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


const restoreParams = z.object({ id: serverIdSchema.describe('a server id of the inventory'), backupId: backupIdSchema });
const restoreIdParams = z.object({ id: serverIdSchema.describe('a server id of the inventory'), restoreId: z.string().min(1).max(128).describe('from the restore job\'s result or the list of restores') });
const scansQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20).describe('1..100, default 20') });
const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('1..1000, default 100'),
  cursor: z.string().max(200).optional().describe('nextCursor of the previous page'),
});

const pending = (idName: 'backupId' | 'scanId' | 'updateId') =>
  okEnvelope(z.object({ [idName]: z.string(), jobId: z.string(), status: z.literal('pending') }));

export default async function serverRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const read = app.requireScope('jobs:read');
  const write = app.requireScope('jobs:write');
  const security = [{ bearerAuth: [] }];
  const enqueueErrors = errors(400, 401, 403, 404, 409, 413, 415, 422, 503);

  app.get(
    '',
    {
      onRequest: read,
      schema: {
        operationId: 'listServers',
        tags: ['servers'],
        summary: 'The servers your token may act on, by id, a page at a time',
        description:
          'Ordered by server id. Pass nextCursor back as cursor for the next page; it is null after the last page. ' +
          'A page starts strictly after the last id of the previous one, so a server added to or removed from the inventory between two pages neither repeats nor skips any other.',
        security,
        querystring: listQuery,
        response: { 200: okEnvelope(z.object({ servers: z.array(serverSchema), nextCursor: z.string().nullable() })), ...errors(400, 401, 403) },
      },
    },
    async (request) => {
      const page = app.jobs.servers(request.principal, request.query);
      return { success: true as const, data: { servers: page.servers.map(present), nextCursor: page.nextCursor } };
    },
  );

  app.get(
    '/:id',
    {
      onRequest: read,
      schema: { operationId: 'getServer', tags: ['servers'], summary: 'One server of the inventory', security, params, response: { 200: okEnvelope(serverSchema), ...errors(401, 403, 404) } },
    },
    async (request) => ({ success: true as const, data: present(app.jobs.server(request.principal, request.params.id)) }),
  );

  app.post(
    '/:id/backup',
    {
      onRequest: write,
      config: { idempotent: true },
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'backupServer',
        tags: ['servers'],
        summary: 'Back up the server\'s declared paths',
        security,
        params,
        body: backupBody,
        headers: idempotentHeaders,
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
      config: { idempotent: true },
      preValidation: emptyBodyAsObject,
      schema: { operationId: 'scanServer', tags: ['servers'], summary: 'Check the server\'s declared ports', security, params, headers: idempotentHeaders, body: scanBody, response: { 202: pending('scanId'), ...enqueueErrors } },
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
      config: { idempotent: true },
      preValidation: emptyBodyAsObject,
      schema: { operationId: 'updateServer', tags: ['servers'], summary: 'Run the server\'s declared update command', security, params, headers: idempotentHeaders, body: updateBody, response: { 202: pending('updateId'), ...enqueueErrors } },
    },
    async (request, reply) => {
      const server = app.jobs.server(request.principal, request.params.id);
      const job = await app.jobs.submit(request.principal, 'update:server', { serverId: server.id }, request.body.options);
      reply.code(202).header('location', `/api/jobs/${job.jobId}`);
      return { success: true as const, data: { updateId: job.recordId, jobId: job.jobId, status: 'pending' as const } };
    },
  );

  app.get(
    '/:id/backups',
    {
      onRequest: read,
      schema: {
        operationId: 'listBackups',
        tags: ['servers'],
        summary: 'The server\'s backups, newest first',
        description: 'Completed, verified backups only; the newest BACKUP_RETENTION are kept (and the ones kept incremental backups build on).',
        security,
        params,
        response: { 200: okEnvelope(z.array(backupListingSchema)), ...errors(401, 403, 404) },
      },
    },
    async (request) => {
      const entries = await app.jobs.serverBackups(request.principal, request.params.id);
      return {
        success: true as const,
        data: entries.map((e) => ({
          backupId: e.backupId,
          jobId: e.jobId,
          type: e.type,
          baseId: e.baseId,
          compressed: e.compressed,
          encrypted: e.encrypted,
          files: e.files,
          skipped: e.skipped,
          deleted: e.deleted,
          sourceBytes: e.sourceBytes,
          bytes: e.bytes,
          sha256: e.sha256,
          createdAt: e.createdAt,
        })),
      };
    },
  );

  app.post(
    '/:id/backups/:backupId/restore',
    {
      onRequest: write,
      config: { idempotent: true },
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'restoreBackup',
        tags: ['servers'],
        summary: 'Restore a backup into a new directory under DATA_DIR/restores/',
        description: 'Enqueues a backup:restore job on the backup queue. Its result names the directory and the number of files.',
        security,
        params: restoreParams,
        body: z.strictObject({ ...options }),
        headers: idempotentHeaders,
        response: {
          202: okEnvelope(z.object({ restoreId: z.string(), backupId: z.string(), jobId: z.string(), status: z.literal('pending') })),
          ...enqueueErrors,
        },
      },
    },
    async (request, reply) => {
      const backup = await app.jobs.backup(request.principal, request.params.id, request.params.backupId);
      const job = await app.jobs.submit(request.principal, 'backup:restore', { serverId: backup.serverId, backupId: backup.backupId }, request.body.options);
      reply.code(202).header('location', `/api/jobs/${job.jobId}`);
      return { success: true as const, data: { restoreId: job.recordId, backupId: backup.backupId, jobId: job.jobId, status: 'pending' as const } };
    },
  );

  app.get(
    '/:id/restores',
    {
      onRequest: read,
      schema: {
        operationId: 'listRestores',
        tags: ['servers'],
        summary: 'The server\'s restores, newest first',
        description: 'Completed restores only, each a directory under DATA_DIR/restores/ on the machine named by `host`; the newest RESTORE_RETENTION per server are kept, older directories are deleted.',
        security,
        params,
        response: { 200: okEnvelope(z.array(restoreListingSchema)), ...errors(401, 403, 404) },
      },
    },
    async (request) => {
      const entries = await app.jobs.serverRestores(request.principal, request.params.id);
      return { success: true as const, data: entries };
    },
  );

  app.delete(
    '/:id/restores/:restoreId',
    {
      onRequest: write,
      schema: {
        operationId: 'deleteRestore',
        tags: ['servers'],
        summary: 'Delete a restore: its directory and its entry',
        description:
          'The entry goes at once. The directory is deleted at once when it is on the machine of the API process that answers (`directoryDeleted: true`), otherwise by a worker process of its machine within 30 s.',
        security,
        params: restoreIdParams,
        response: {
          200: okEnvelope(z.object({ restoreId: z.string(), removed: z.literal(true), directory: z.string(), host: z.string(), directoryDeleted: z.boolean() })),
          ...errors(401, 403, 404),
        },
      },
    },
    async (request) => {
      const { entry, directoryDeleted } = await app.jobs.removeRestore(request.principal, request.params.id, request.params.restoreId);
      return { success: true as const, data: { restoreId: entry.restoreId, removed: true as const, directory: entry.directory, host: entry.host, directoryDeleted } };
    },
  );

  app.get(
    '/:id/scans',
    {
      onRequest: read,
      schema: {
        operationId: 'listScans',
        tags: ['servers'],
        summary: 'The server\'s recent scans, newest first',
        description: 'Up to the newest 100 scans of the server are kept (for 8 days).',
        security,
        params,
        querystring: scansQuery,
        response: { 200: okEnvelope(z.array(scanRecordSchema)), ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const records = await app.jobs.recentScans(request.principal, request.params.id, request.query.limit);
      return {
        success: true as const,
        data: records.map((r) => {
          // A completed scan's record holds its result, a failed one `{ error }`.
          const res = (r.result ?? {}) as Partial<ScanResult> & { error?: string };
          return {
            scanId: r.id,
            jobId: r.jobId,
            status: r.status === 'pending' ? ('running' as const) : r.status,
            createdAt: r.createdAt,
            finishedAt: r.finishedAt,
            scanType: res.scanType ?? null,
            reachable: res.reachable ?? null,
            open: res.open ?? [],
            closed: res.closed ?? [],
            findings: res.findings ?? [],
            error: r.status === 'failed' ? String(res.error ?? 'failed') : null,
          };
        }),
      };
    },
  );
}
