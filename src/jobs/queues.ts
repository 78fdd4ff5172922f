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

/** Retention and retry defaults of the contract, applied to every queue. */
export const DEFAULT_JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: { age: WEEK_SECONDS, count: 1000 },
  removeOnFail: { age: WEEK_SECONDS },
} as const;

export const JOB_STATES = ['waiting', 'active', 'completed', 'failed', 'delayed'] as const;
export type JobState = (typeof JOB_STATES)[number];
