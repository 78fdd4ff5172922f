import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { QUEUE_NAMES } from '../src/jobs/index.js';
import { errors, jobIdParams, jobViewSchema, okEnvelope } from '../src/http/schemas.js';

const deadLetterSchema = jobViewSchema
  .extend({
    errorType: z.string().describe('the failure reason without its particulars: failures of one cause share it'),
    replayedAs: z.string().nullable().describe('the job that replayed this one, if any'),
  })
  .describe('DeadLetter');

const errorTypeFilter = z
  .string()
  .min(1)
  .max(120)
  .optional()
  .describe('exactly an errorType of GET /api/dead-letters/errors: only the dead letters of that cause (read from their own index: the cost is that of what is returned)');

const replayBody = z.union([
  z.strictObject({ ids: z.array(z.string().min(1).max(200)).min(1).max(1000).describe('dead letters to replay, by job id') }),
  z.strictObject({
    queue: z.enum(QUEUE_NAMES).optional(),
    errorContains: z.string().min(1).max(500).optional().describe('case-insensitive part of the failure reason'),
    errorType: errorTypeFilter,
    limit: z.number().int().min(1).max(1000).default(100).describe('at most this many, newest first (default 100)'),
  }),
]);

/** Jobs that failed for good; a tenant sees and acts on its own, admin on all. */
export default async function deadLetterRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const read = app.requireScope('jobs:read');
  const write = app.requireScope('jobs:write');
  const security = [{ bearerAuth: [] }];
  const tags = ['dead letters'];

  app.get(
    '',
    {
      onRequest: read,
      schema: {
        operationId: 'listDeadLetters',
        tags,
        summary: 'Jobs that failed for good (attempts exhausted, or a failure retrying cannot fix), newest first',
        description:
          'Newest first (by creation). With errorType, only the dead letters of that cause, read from their own index. With errorContains a page may hold fewer than limit jobs while nextCursor is not null: follow it until it is null.',
        security,
        querystring: z.strictObject({
          queue: z.enum(QUEUE_NAMES).optional(),
          errorContains: z.string().min(1).max(500).optional().describe('case-insensitive part of the failure reason'),
          errorType: errorTypeFilter,
          limit: z.coerce.number().int().min(1).max(100).default(20),
          cursor: z.string().min(1).max(200).optional().describe('nextCursor of the previous page'),
        }),
        response: { 200: okEnvelope(z.object({ jobs: z.array(deadLetterSchema), nextCursor: z.string().nullable() })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.deadLetters.list(request.principal, request.query) }),
  );

  app.get(
    '/errors',
    {
      onRequest: read,
      schema: {
        operationId: 'groupDeadLetterErrors',
        tags,
        summary: 'Dead letters grouped by error type: count, queues and the newest example, most frequent first',
        description:
          'Every dead letter counts, from an aggregate kept in Redis: the worker that fails a job for good counts it, a grouping also counts what failed since the last one, a retry or removal through the API takes it out at once, and a job removed by retention or another tool leaves its count when the index sweep or a listing comes by it (within about a minute). `scanned` is the number of dead letters counted; `truncated` is always false (kept for earlier clients).',
        security,
        querystring: z.strictObject({ queue: z.enum(QUEUE_NAMES).optional() }),
        response: {
          200: okEnvelope(
            z.object({
              scanned: z.number().int(),
              truncated: z.boolean(),
              groups: z.array(
                z.object({
                  errorType: z.string(),
                  count: z.number().int(),
                  queues: z.array(z.string()),
                  newest: z.object({ jobId: z.string(), type: z.string(), failedReason: z.string().nullable(), finishedAt: z.string().nullable() }),
                }),
              ),
            }),
          ),
          ...errors(400, 401, 403, 503),
        },
      },
    },
    async (request) => ({ success: true as const, data: await app.deadLetters.errors(request.principal, request.query.queue) }),
  );

  app.post(
    '/replay',
    {
      onRequest: write,
      schema: {
        operationId: 'replayDeadLetters',
        tags,
        summary: 'Enqueue dead letters again as new jobs with the same type and data',
        description:
          'Either `{ ids }` or a filter `{ queue?, errorType?, errorContains?, limit? }` (errorContains looks at the newest 10 000 dead letters; errorType reads only those of that cause). Answers which old id became which new job; ids that are not dead letters, were replayed before, or whose server no longer allows the job are listed in `skipped` with the reason.',
        security,
        body: replayBody,
        response: {
          200: okEnvelope(
            z.object({
              count: z.number().int(),
              replayed: z.array(z.object({ from: z.string(), to: z.string() })),
              skipped: z.array(z.object({ id: z.string(), reason: z.string() })),
            }),
          ),
          ...errors(400, 401, 403, 413, 415, 503),
        },
      },
    },
    async (request) => {
      const out = await app.deadLetters.replay(request.principal, request.body);
      return { success: true as const, data: { count: out.replayed.length, ...out } };
    },
  );

  app.delete(
    '/:id',
    {
      onRequest: write,
      schema: {
        operationId: 'removeDeadLetter',
        tags,
        summary: 'Remove a dead letter',
        security,
        params: jobIdParams,
        response: { 200: okEnvelope(z.object({ jobId: z.string(), removed: z.literal(true) })), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      await app.deadLetters.remove(request.principal, request.params.id);
      return { success: true as const, data: { jobId: request.params.id, removed: true as const } };
    },
  );
}
