import { z } from 'zod';

/** The API's names for the queues, and how each is run. */
export const QUEUE_NAMES = ['backup', 'scan', 'update'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export const PRIORITY = { CRITICAL: 1, HIGH: 2, NORMAL: 3, LOW: 4, BACKGROUND: 5 } as const;

export type QueueDefinition = {
  name: QueueName;
  /** The BullMQ queue name in Redis. */
  redisName: string;
  concurrency: number;
  defaultPriority: number;
  types: readonly JobType[];
};

export const JOB_TYPES = ['backup:manual', 'backup:scheduled', 'backup:restore', 'scan:full', 'scan:quick', 'update:server'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const QUEUES: Readonly<Record<QueueName, QueueDefinition>> = {
  backup: {
    name: 'backup',
    redisName: 'backup-queue',
    concurrency: 2,
    defaultPriority: PRIORITY.HIGH,
    types: ['backup:manual', 'backup:scheduled', 'backup:restore'],
  },
  scan: {
    name: 'scan',
    redisName: 'scan-queue',
    concurrency: 5,
    defaultPriority: PRIORITY.NORMAL,
    types: ['scan:full', 'scan:quick'],
  },
  update: {
    name: 'update',
    redisName: 'update-queue',
    concurrency: 1,
    defaultPriority: PRIORITY.CRITICAL,
    types: ['update:server'],
  },
};

export function queueOfType(type: JobType): QueueName {
  return type.slice(0, type.indexOf(':')) as QueueName;
}

const WEEK_SECONDS = 7 * 24 * 3600;

/** Retention and retry defaults of the contract, applied to every queue. */
export const DEFAULT_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { age: WEEK_SECONDS, count: 1000 },
  removeOnFail: { age: WEEK_SECONDS },
} as const;

export const serverIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a server id: lower-case letters, digits and "-", at most 64 characters');

export const backupDataSchema = z.strictObject({
  serverId: serverIdSchema,
  backup_type: z.enum(['full', 'incremental']).default('full'),
  compression: z.boolean().default(true),
  encryption: z.boolean().default(false),
});

export const backupIdSchema = z.uuid().describe('a backupId from GET /api/servers/{id}/backups');

export const restoreDataSchema = z.strictObject({
  serverId: serverIdSchema,
  backupId: backupIdSchema,
});

export const scanDataSchema = z.strictObject({ serverId: serverIdSchema });
export const updateDataSchema = z.strictObject({ serverId: serverIdSchema });

export const JOB_DATA_SCHEMAS = {
  'backup:manual': backupDataSchema,
  'backup:scheduled': backupDataSchema,
  'backup:restore': restoreDataSchema,
  'scan:full': scanDataSchema,
  'scan:quick': scanDataSchema,
  'update:server': updateDataSchema,
} as const satisfies Record<JobType, z.ZodType>;

export type BackupData = z.output<typeof backupDataSchema>;
export type RestoreData = z.output<typeof restoreDataSchema>;
export type ScanData = z.output<typeof scanDataSchema>;
export type UpdateData = z.output<typeof updateDataSchema>;
export type JobData = BackupData | RestoreData | ScanData | UpdateData;

/** What callers may set per job; BullMQ internals (removeOnComplete, repeat...) are not reachable. */
export const jobOptionsSchema = z.strictObject({
  priority: z
    .number()
    .int()
    .min(1)
    .max(5)
    .optional()
    .describe('1 CRITICAL, 2 HIGH, 3 NORMAL, 4 LOW, 5 BACKGROUND; defaults to the queue priority'),
  delay: z
    .number()
    .int()
    .min(0)
    .max(30 * 24 * 3600 * 1000)
    .optional()
    .describe('milliseconds to wait before the job may run (at most 30 days)'),
  attempts: z.number().int().min(1).max(10).optional().describe('how many times the job may run (default 3)'),
});
export type JobOptions = z.output<typeof jobOptionsSchema>;

/**
 * What is stored as a BullMQ job's data: the caller's validated input plus
 * who asked for it. Workers re-parse it with the same schemas.
 */
export type JobEnvelope<D = JobData> = {
  tenant: string;
  requestedBy: string;
  /** backupId / scanId / updateId of the record the job writes. */
  recordId: string;
  input: D;
};

/** The record id in a schedule's job template: each run gets its own, derived from its job id (see runJob). */
export const SCHEDULED_RECORD = 'scheduled';

export function envelopeSchema<S extends z.ZodType>(input: S) {
  return z.object({
    tenant: z.string().min(1),
    requestedBy: z.string(),
    recordId: z.string().min(1),
    input,
  });
}

/** Job ids are opaque to callers; the prefix lets the API find the queue in O(1). */
export const JOB_ID_PATTERN = /^(backup|scan|update)_[A-Za-z0-9_-]{22}$/;
/** The runs of a schedule: BullMQ names them `repeat:<scheduler id>:<time>`, and our scheduler ids start with the queue. */
export const SCHEDULED_JOB_ID_PATTERN = /^repeat:(backup|scan|update)~[A-Za-z0-9._-]{1,64}~[A-Za-z0-9][A-Za-z0-9._-]{0,63}:\d{1,16}$/;

export function queueOfJobId(id: string): QueueName | undefined {
  if (JOB_ID_PATTERN.test(id)) return id.slice(0, id.indexOf('_')) as QueueName;
  const m = SCHEDULED_JOB_ID_PATTERN.exec(id);
  return m ? (m[1] as QueueName) : undefined;
}

export const JOB_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed'] as const;
export type JobState = (typeof JOB_STATES)[number];
