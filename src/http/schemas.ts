import { z } from 'zod';
import { JOB_FAMILIES, JOB_STATES, JOB_TYPES, QUEUE_NAMES } from '../jobs/index.js';

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

/** The OpenAPI component (and Python model) name of a family's result: `backup` → BackupResult. */
export function jobResultName(family: { name: string }): string {
  return `${family.name.replace(/(^|[^A-Za-z0-9])([A-Za-z0-9])/g, (_, _sep: string, c: string) => c.toUpperCase())}Result`;
}

/** components.schemas of the OpenAPI document: each family's result schema, under jobResultName. */
export function jobResultComponents(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    JOB_FAMILIES.map((family) => {
      const { $schema: _, ...json } = z.toJSONSchema(family.result, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any' });
      return [jobResultName(family), json];
    }),
  );
}

const resultShapes = JOB_FAMILIES.map((f) => `${jobResultName(f)} for ${f.types.join(', ')}`).join('; ');

type JsonNode = { [key: string]: unknown };
const isNode = (v: unknown): v is JsonNode => typeof v === 'object' && v !== null;

/**
 * The OpenAPI document's job views with `result` pointing at the result
 * components. The zod schema keeps `result` unknown on purpose: the response
 * serializer would drop every field a union did not list, and pay to match it.
 */
export function linkJobResults<T>(doc: T): T {
  const refs = [...JOB_FAMILIES.map((f) => ({ $ref: `#/components/schemas/${jobResultName(f)}` })), { type: 'null' }];
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (!isNode(node)) return node;
    const out: JsonNode = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, visit(v)]));
    const props = out.properties;
    if (isNode(props) && isNode(props.result) && 'failedReason' in props) {
      out.properties = { ...props, result: { description: props.result.description, anyOf: refs } };
    }
    return out;
  };
  return visit(doc) as T;
}

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
    result: z.unknown().describe(`what the job produced, once completed; null otherwise. Its shape is the job type's (components/schemas): ${resultShapes}`),
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
  failed: z.number().int().describe('failed for good, cancelled jobs not included'),
  delayed: z.number().int(),
  cancelled: z.number().int().describe('stopped on request while they ran'),
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
