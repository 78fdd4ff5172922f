import { createHash } from 'node:crypto';
import { QUEUES, type QueueName } from '../jobs/index.js';

/**
 * Every Redis key and pub/sub channel name of the product, built from the
 * queue prefix (QUEUE_PREFIX, `bull` unless configured). This is the one
 * place that knows them, so that a change of scheme (Redis Cluster hash tags,
 * say) is made here only. BullMQ names its own keys under
 * `<prefix>:<queue>:`; ours all live under `<prefix>:jobsapi:`.
 *
 * The scripts that walk jobs of every queue (src/redis/lua/job-scripts.ts)
 * get `prefix` and derive each queue's key prefix the way `queue()` does.
 */
export function redisKeys(prefix: string) {
  const ns = `${prefix}:jobsapi`;
  return {
    /** The prefix itself: BullMQ's `prefix` option, and what the job scripts build queue keys from. */
    prefix,
    /** The start of BullMQ's keys of a queue (`bull:scan-queue:`); a job's hash is this plus its id. */
    queue: (queue: QueueName) => `${prefix}:${QUEUES[queue].redisName}:`,

    /** The listing index: every job by creation time (`all`), the same per tenant, and the set of tenants. */
    index: {
      all: `${ns}:idx:all`,
      /** A tenant's index is this plus the tenant (the scripts that touch every tenant's index append it themselves). */
      tenantPrefix: `${ns}:idx:tenant:`,
      tenant: (tenant: string) => `${ns}:idx:tenant:${tenant}`,
      tenants: `${ns}:tenants`,
    },

    /** A job's backup, scan or update record (a hash). */
    record: (kind: QueueName, id: string) => `${ns}:record:${kind}:${id}`,
    /** A server's records of one kind, by start time. */
    serverRecords: (kind: QueueName, serverId: string) => `${ns}:server:${serverId}:${kind}`,

    /** A server's completed backups: ids by completion time, and their entries. */
    backupOrder: (serverId: string) => `${ns}:backups:${serverId}:order`,
    backupEntries: (serverId: string) => `${ns}:backups:${serverId}:entries`,

    /** Where cancel requests are published to every worker process. */
    cancelChannel: `${ns}:cancel`,
    /** A job's pending cancel request (its value is the reason). */
    cancelRequest: (jobId: string) => `${ns}:cancel:${jobId}`,

    /** The job a dead letter was replayed as. */
    replayed: (jobId: string) => `${ns}:replayed:${jobId}`,

    /** A tenant's Idempotency-Key and the response it answers with; the key is stored hashed. */
    idempotency: (tenant: string, key: string) => `${ns}:idem:${tenant}:${createHash('sha256').update(key).digest('hex')}`,

    /** The namespace of @fastify/rate-limit's counters (it appends its own key). */
    rateLimitNamespace: `${ns}:ratelimit:`,

    /** The channel on which workers say "job X has new log lines". */
    jobLogChannel: `${ns}:joblog`,

    /** One job at a time per server and kind. */
    serverLock: (kind: QueueName, serverId: string) => `${ns}:lock:${kind}:${serverId}`,

    /** A tenant's slots of active jobs in a queue (job id -> expiry). */
    tenantSlots: (queue: QueueName, tenant: string) => `${ns}:slots:${queue}:${tenant}`,
    /** A tenant's temporary override of TENANT_MAX_ACTIVE. */
    tenantLimit: (tenant: string) => `${ns}:tenant-limit:${tenant}`,

    /** The worker processes, by the time they last reported. */
    workerRegistry: `${ns}:workers`,
    /** What one worker process reported (a hash). */
    workerProcess: (id: string) => `${ns}:workers:${id}`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;
