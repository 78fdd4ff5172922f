import { z } from 'zod';
import { JOB_STATES, JOB_TYPES, QUEUE_NAMES } from '../jobs/index.js';

export const errorEnvelopeSchema = z
  .object({
    success: z.literal(false),
    error: z.object({
      code: z.string().describe('stable UPPER_SNAKE_CASE code to branch on'),
      message: z.string().describe('a sentence for people; names the field for invalid input'),
      details: z
        .array(z.object({ index: z.number().int(), code: z.string(), message: z.string() }))
        .optional()
        .describe('BULK_INVALID only: each rejected item of the list, by its index'),
    }),
    requestId: z.string(),
  })
  .describe('Error');

export function okEnvelope<T extends z.ZodType>(data: T) {
  return z.object({ success: z.literal(true), data });
}

/** Error responses a route documents, by status code. */
export function errors(...codes: Array<400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503>) {
  return Object.fromEntries(codes.map((c) => [c, errorEnvelopeSchema])) as Record<number, typeof errorEnvelopeSchema>;
}

export const jobIdParams = z.object({ id: z.string().min(1).max(200).describe('the job id returned at enqueue') });

export const jobViewSchema = z
  .object({
    id: z.string(),
    queue: z.enum(QUEUE_NAMES),
    type: z.enum(JOB_TYPES),
    tenant: z.string(),
    state: z.enum(JOB_STATES),
    progress: z.number().describe('0..100'),
    attempts: z.number().int().describe('attempts made, counting the one running now (waiting for a server lock is not an attempt)'),
    maxAttempts: z.number().int(),
    data: z.unknown().describe('the job data as submitted, with defaults applied'),
    result: z.unknown().describe('what the job produced, once completed; null otherwise'),
    failedReason: z.string().nullable(),
    createdAt: z.string().describe('ISO 8601'),
    processedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .describe('Job');

export const queueParams = z.object({ queue: z.enum(QUEUE_NAMES).describe('backup, scan or update') });

export const queueCountsSchema = z.object({
  waiting: z.number().int(),
  active: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  delayed: z.number().int(),
  total: z.number().int(),
});

/** preValidation for optional bodies: `curl -X POST` without `-d` means "all defaults". */
export async function emptyBodyAsObject(request: { body: unknown }) {
  if (request.body === undefined || request.body === null) request.body = {};
}

/** Headers of an enqueue route: Idempotency-Key, documented (other headers pass through untouched). */
export const idempotentHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .max(255)
    .optional()
    .describe('makes the request safe to repeat: for 24 hours a repeat with this key (per tenant) answers 200 with the first response; the same key with another body is a 422'),
});
