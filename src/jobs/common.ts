import { z } from 'zod';
import type { QueueName, TypeNameOf } from './queues.js';

export const serverIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a server id: lower-case letters, digits and "-", at most 64 characters');

/** The fields of a job's options (pick from these; jobOptionsSchema adds the checks across fields). */
export const jobOptionFields = z.strictObject({
  priority: z
    .number()
    .int()
    .min(1)
    .max(5)
    .optional()
    .describe('1 CRITICAL, 2 HIGH, 3 NORMAL, 4 LOW, 5 BACKGROUND; defaults to the queue priority')
    // What the docs' "Try it out" fills in: an ordinary job, not a 30-day delay at top priority.
    .meta({ examples: [3] }),
  delay: z
    .number()
    .int()
    .min(0)
    .max(30 * 24 * 3600 * 1000)
    .optional()
    .describe('milliseconds to wait before the job may run (at most 30 days)')
    .meta({ examples: [0] }),
  attempts: z.number().int().min(1).max(10).optional().describe('how many times the job may run, the first run included (default JOB_ATTEMPTS: 3)').meta({ examples: [3] }),
  backoffMs: z
    .number()
    .int()
    .min(100)
    .max(3_600_000)
    .optional()
    .describe('the ceiling of the first retry\'s wait in ms; it doubles for each later retry, and each wait is a random time below its ceiling (default RETRY_BACKOFF_MS: 5000)'),
  backoffMaxMs: z
    .number()
    .int()
    .min(100)
    .max(86_400_000)
    .optional()
    .describe('the most a retry\'s ceiling may grow to, in ms (default RETRY_BACKOFF_MAX_MS: 300000); not below backoffMs'),
  timeoutSec: z
    .number()
    .int()
    .min(1)
    .max(86_400)
    .optional()
    .describe('how long a run may take before its work is stopped and the attempt fails, saying so (default: the server\'s timeoutSec for the kind in the inventory)'),
});

/** What callers may set per job; BullMQ internals (removeOnComplete, repeat...) are not reachable. */
export const jobOptionsSchema = jobOptionFields.refine((o) => o.backoffMs === undefined || o.backoffMaxMs === undefined || o.backoffMaxMs >= o.backoffMs, {
  message: 'backoffMaxMs must be at least backoffMs',
  path: ['backoffMaxMs'],
});
export type JobOptions = z.output<typeof jobOptionsSchema>;

/** The schema of a JobEnvelope (index.ts) around a job type's input schema. */
export function envelopeSchema<S extends z.ZodType>(input: S) {
  return z.object({
    tenant: z.string().min(1),
    requestedBy: z.string(),
    recordId: z.string().min(1),
    /** The job's own timeout (options.timeoutSec), over the inventory's. */
    timeoutSec: z.number().int().min(1).max(86_400).optional(),
    /** Its place in its bulk request: fair dispatch keeps the request's order by it (laneOrder, src/redis/lua/fair-dispatch.ts). */
    place: z.number().int().min(0).optional(),
    input,
  });
}

/**
 * A job family: job types that take the same input and produce the same
 * result, on one queue. Its file is the whole contract of those types: the
 * route validates `input`, the worker re-parses it and returns a `result`, and
 * the OpenAPI document and the Python client's models are generated from both.
 */
export type JobFamily<
  N extends string = string,
  Q extends QueueName = QueueName,
  T extends TypeNameOf<Q> = TypeNameOf<Q>,
  I extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
> = {
  /** Names the family's schemas where they are published (`backup` → BackupInput, BackupResult). */
  readonly name: N;
  readonly queue: Q;
  /** Its job types, each named `<queue>:<what>`. */
  readonly types: readonly [T, ...T[]];
  /** The job data a caller submits. */
  readonly input: I;
  /** What a completed job holds in `result`. */
  readonly result: R;
  /** Whether a cron schedule may run its jobs (default true; a restore is something a person asks for). */
  readonly schedulable?: boolean;
};

/** Declares a family, keeping its literal names in the types. */
export function jobFamily<
  const N extends string,
  const Q extends QueueName,
  const T extends TypeNameOf<Q>,
  I extends z.ZodType,
  R extends z.ZodType,
>(family: JobFamily<N, Q, T, I, R>): JobFamily<N, Q, T, I, R> {
  return family;
}
