import type { z } from 'zod';
import { backupFamily } from './backup.js';
import { restoreFamily } from './restore.js';
import { scanFamily } from './scan.js';
import { updateFamily } from './update.js';
import { QUEUE_NAMES, type QueueName } from './queues.js';

export * from './queues.js';
export * from './retry.js';
export * from './job-id.js';
export * from './error-type.js';
export * from './common.js';
export * from './backup.js';
export * from './restore.js';
export * from './scan.js';
export * from './update.js';

/**
 * Every job family, the one list of what jobs there are: the job types, their
 * schemas and the lists below all come from it. A new job type goes into its
 * family's file (or a new family's file, added here).
 */
export const JOB_FAMILIES = [backupFamily, restoreFamily, scanFamily, updateFamily] as const;

export type AnyJobFamily = (typeof JOB_FAMILIES)[number];
export type JobFamilyName = AnyJobFamily['name'];
export type JobType = AnyJobFamily['types'][number];
type WithType<F, T> = F extends { types: readonly (infer U)[] } ? (T extends U ? F : never) : never;
/** The family a job type belongs to. */
export type FamilyOf<T extends JobType> = WithType<AnyJobFamily, T>;
/** The job data of a type (of any type when not given: the union). */
export type JobInput<T extends JobType = JobType> = T extends JobType ? z.output<FamilyOf<T>['input']> : never;
/** What a completed job of a type holds in `result` (of any type when not given: the union). */
export type JobResult<T extends JobType = JobType> = T extends JobType ? z.output<FamilyOf<T>['result']> : never;
export type JobData = JobInput;

/**
 * What is stored as a BullMQ job's data: the caller's validated input plus
 * who asked for it. Workers re-parse it with the same schemas (envelopeSchema).
 */
export type JobEnvelope<D = JobData> = {
  tenant: string;
  requestedBy: string;
  /** backupId / scanId / updateId of the record the job writes. */
  recordId: string;
  /** The job's own timeout (options.timeoutSec); absent: the inventory's for its kind. */
  timeoutSec?: number;
  /** Its place in its bulk request (absent: enqueued alone): its order among jobs created in the same millisecond. */
  place?: number;
  input: D;
};

/** The family a job type belongs to (compare with `backupFamily` & co. instead of listing its types). */
export function familyOf<T extends JobType>(type: T): FamilyOf<T> {
  return JOB_FAMILIES.find((f) => (f.types as readonly JobType[]).includes(type)) as FamilyOf<T>;
}

/** Every job type, family by family. */
export const JOB_TYPES: readonly JobType[] = JOB_FAMILIES.flatMap((f) => f.types);
/** The job types a cron schedule may run: those of the families that do not say otherwise. */
export const SCHEDULABLE_JOB_TYPES: readonly JobType[] = JOB_FAMILIES.filter((f) => f.schedulable !== false).flatMap((f) => f.types);

function byType<K extends 'input' | 'result'>(key: K) {
  return Object.fromEntries(JOB_FAMILIES.flatMap((f) => f.types.map((t) => [t, f[key]]))) as {
    readonly [T in JobType]: FamilyOf<T>[K];
  };
}

/** Job type → the schema of its data, as the route validates and the worker re-parses it. */
export const JOB_DATA_SCHEMAS = byType('input');
/** Job type → the schema of its result, as its processor returns it. */
export const JOB_RESULT_SCHEMAS = byType('result');

/** The job types each queue runs, family by family. */
export const JOB_TYPES_OF_QUEUE: Readonly<Record<QueueName, readonly JobType[]>> = Object.fromEntries(
  QUEUE_NAMES.map((q) => [q, JOB_FAMILIES.filter((f) => f.queue === q).flatMap((f) => f.types)]),
) as Record<QueueName, JobType[]>;
