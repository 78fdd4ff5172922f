import { RETRY_BACKOFF_TYPE, type RetryBackoff } from './retry.js';

/** The API's names for the queues, and how each is run. */
export const QUEUE_NAMES = ['backup', 'scan', 'update'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export const PRIORITY = { CRITICAL: 1, HIGH: 2, NORMAL: 3, LOW: 4, BACKGROUND: 5 } as const;

/** The job types a queue runs are its families' (see JOB_TYPES_OF_QUEUE in index.ts). */
export type QueueDefinition = {
  name: QueueName;
  /**
   * The BullMQ queue name in Redis: the API's name as a hash tag (`{scan}`), so
   * that on Redis Cluster every key of the queue lives on one node (see
   * src/redis/keys.ts). Earlier versions named them `scan-queue`; src/redis/migrate-keys.ts moves their keys.
   */
  redisName: `{${QueueName}}`;
  concurrency: number;
  defaultPriority: number;
};

export const QUEUES: Readonly<Record<QueueName, QueueDefinition>> = {
  backup: { name: 'backup', redisName: '{backup}', concurrency: 2, defaultPriority: PRIORITY.HIGH },
  scan: { name: 'scan', redisName: '{scan}', concurrency: 5, defaultPriority: PRIORITY.NORMAL },
  update: { name: 'update', redisName: '{update}', concurrency: 1, defaultPriority: PRIORITY.CRITICAL },
};

/** A job type's name starts with its queue (`backup:restore` runs on `backup`); each family's file is held to it. */
export type TypeNameOf<Q extends QueueName> = `${Q}:${string}`;

export function queueOfType(type: TypeNameOf<QueueName>): QueueName {
  return type.slice(0, type.indexOf(':')) as QueueName;
}

const WEEK_SECONDS = 7 * 24 * 3600;

/** What the environment may change of every job's defaults (config.ts: JOB_ATTEMPTS, RETRY_BACKOFF_*, *_RETENTION_*). */
export type JobDefaults = {
  attempts: number;
  backoffMs: number;
  backoffMaxMs: number;
  completedAgeSec: number;
  completedCount: number;
  failedAgeSec: number;
};

/** The contract's defaults: 3 attempts, retries within 5 s then 10 s (at most 5 min), completed kept 7 days or the last 1000, failed 7 days. */
export const JOB_DEFAULTS: Readonly<JobDefaults> = {
  attempts: 3,
  backoffMs: 5000,
  backoffMaxMs: 300_000,
  completedAgeSec: WEEK_SECONDS,
  completedCount: 1000,
  failedAgeSec: WEEK_SECONDS,
};

/** BullMQ's defaultJobOptions of every queue from those defaults. */
export function defaultJobOptions(d: Readonly<JobDefaults>) {
  const backoff: RetryBackoff = { type: RETRY_BACKOFF_TYPE, delay: d.backoffMs, maxDelay: d.backoffMaxMs };
  return {
    attempts: d.attempts,
    backoff,
    removeOnComplete: { age: d.completedAgeSec, count: d.completedCount },
    removeOnFail: { age: d.failedAgeSec },
  };
}

/** The contract's defaultJobOptions (the benchmark's; the server builds them from its configuration). */
export const DEFAULT_JOB_OPTIONS = defaultJobOptions(JOB_DEFAULTS);

/** `cancelled`: stopped on request while it ran (BullMQ keeps it as failed with the reason `cancelled`). */
export const JOB_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** The states a job ends in: it will not change again unless someone retries it. */
export const FINISHED_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled']);
export const isFinished = (state: JobState): boolean => FINISHED_STATES.has(state);
