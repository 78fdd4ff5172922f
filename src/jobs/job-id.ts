import { QUEUE_NAMES, type QueueName } from './queues.js';

const QUEUE = `(${QUEUE_NAMES.join('|')})`;

const JOB_ID = `${QUEUE}_[A-Za-z0-9_-]{22}`;

/** Job ids are opaque to callers; the prefix lets the API find the queue in O(1). */
export const JOB_ID_PATTERN = new RegExp(`^${JOB_ID}$`);
/** Job ids within a text (a failure reason, say), as whole words. */
export const JOB_IDS_IN_TEXT = new RegExp(`\\b${JOB_ID}\\b`, 'g');
/** The runs of a schedule: BullMQ names them `repeat:<scheduler id>:<time>`, and our scheduler ids start with the queue. */
export const SCHEDULED_JOB_ID_PATTERN = new RegExp(`^repeat:${QUEUE}~[A-Za-z0-9._-]{1,64}~[A-Za-z0-9][A-Za-z0-9._-]{0,63}:\\d{1,16}$`);

export function queueOfJobId(id: string): QueueName | undefined {
  if (JOB_ID_PATTERN.test(id)) return id.slice(0, id.indexOf('_')) as QueueName;
  const m = SCHEDULED_JOB_ID_PATTERN.exec(id);
  return m ? (m[1] as QueueName) : undefined;
}

/** The record id in a schedule's job template: each run gets its own, derived from its job id (see runJob). */
export const SCHEDULED_RECORD = 'scheduled';
