import { createHash } from 'node:crypto';
import { QUEUES, queueOfJobId, type QueueName } from '../jobs/index.js';

/**
 * Every Redis key and pub/sub channel name of the product, built from the
 * queue prefix (QUEUE_PREFIX, `bull` unless configured). This is the one
 * place that knows them.
 *
 * The names are laid out for Redis Cluster, and the same on every topology so
 * that one code path serves them all. A Cluster node holds a key by its hash
 * tag (the part between the first `{` and `}`), and a Lua script or a MULTI
 * may only touch keys of one tag. So:
 * - each queue has its tag, named after it: BullMQ's keys of the queue
 *   (`bull:{scan}:wait`...) and every product key that goes with its jobs
 *   (`bull:jobsapi:{scan}:...`: job index, records, server locks, tenant
 *   slots and limits, cancel requests, replay markers) live on one node,
 *   so the scripts that read a job and its index together can run there;
 * - what is not per queue (the worker registry, GLOBAL_MAX_ACTIVE's slots) has the tag `{jobsapi}`;
 * - webhooks have the tag `{webhooks}`: their BullMQ delivery queue
 *   (`bull:{webhooks}:...`) and their registrations and delivery logs
 *   (`bull:jobsapi:{webhooks}:...`), which the create script touches together;
 * - keys that no script or transaction touches with another (Idempotency-Key
 *   responses, rate-limit counters) carry no tag, so that Cluster spreads
 *   them over every node instead of loading one.
 *
 * Keys of an earlier version (`bull:scan-queue:...`, `bull:jobsapi:idx:all`...)
 * are moved here once, at start (src/redis/migrate-keys.ts).
 */
export function redisKeys(prefix: string) {
  const ns = `${prefix}:jobsapi`;
  /** The product keys of a queue: `bull:jobsapi:{scan}`. */
  const tagged = (queue: QueueName) => `${ns}:{${queue}}`;
  const global = `${ns}:{jobsapi}`;
  const webhooksTag = `${ns}:{webhooks}`;
  /** A job id names its queue; an id that does not (never passed here by the product) falls back to the global tag. */
  const ofJob = (jobId: string) => {
    const queue = queueOfJobId(jobId);
    return queue ? tagged(queue) : global;
  };
  return {
    /** The prefix itself: BullMQ's `prefix` option. */
    prefix,
    /** The start of BullMQ's keys of a queue (`bull:{scan}:`); a job's hash is this plus its id. */
    queue: (queue: QueueName) => `${prefix}:${QUEUES[queue].redisName}:`,
    /**
     * BullMQ's own keys of a queue that the API reads directly (src/services/job-explain.ts: where a job
     * stands in line, when a delayed one is due, its last log line). BullMQ names them; they are spelled here.
     */
    bullmq: (queue: QueueName) => {
      const q = `${prefix}:${QUEUES[queue].redisName}:`;
      return {
        wait: `${q}wait`,
        prioritized: `${q}prioritized`,
        delayed: `${q}delayed`,
        jobLog: (jobId: string) => `${q}${jobId}:logs`,
        /** The lock of an active job (its worker's token): remove-stuck deletes the one a hung worker keeps renewing. */
        jobLock: (jobId: string) => `${q}${jobId}:lock`,
      };
    },

    /** The listing index of each queue: its jobs by creation time (`all`), the same per tenant, and the queue's tenants. */
    index: {
      all: (queue: QueueName) => `${tagged(queue)}:idx:all`,
      /** A tenant's index is this plus the tenant (the sweep script, which touches every tenant's index, appends it itself). */
      tenantPrefix: (queue: QueueName) => `${tagged(queue)}:idx:tenant:`,
      tenant: (queue: QueueName, tenant: string) => `${tagged(queue)}:idx:tenant:${tenant}`,
      tenants: (queue: QueueName) => `${tagged(queue)}:tenants`,
      /** A tenant's jobs of the queue that were enqueued and have not started yet, nor been handed a slot by fair dispatch (job id -> enqueue time): its quota. */
      queued: (queue: QueueName, tenant: string) => `${tagged(queue)}:queued:${tenant}`,
      queuedPrefix: (queue: QueueName) => `${tagged(queue)}:queued:`,
      /** A server's index is this plus the server id: the queue's jobs on that server, by creation time. */
      serverPrefix: (queue: QueueName) => `${tagged(queue)}:idx:server:`,
      server: (queue: QueueName, serverId: string) => `${tagged(queue)}:idx:server:${serverId}`,
      /** Job id -> server id of the jobs in the server indexes (a hash), so that the sweep can forget a gone job there. */
      serverOf: (queue: QueueName) => `${tagged(queue)}:idx:server-of`,
    },

    /**
     * The dead-letter aggregate of a queue (src/redis/lua/dead-letters.ts, which names the keys under `prefix` as
     * these do): its job hash, and per scope (a tenant, or `*` for every tenant) its dead letters, its error types,
     * and those of one error type (by the type's SHA-1); `mark`, how far BullMQ's failed set has been read.
     */
    deadLetters: {
      jobs: (queue: QueueName) => `${tagged(queue)}:dead:jobs`,
      prefix: (queue: QueueName) => `${tagged(queue)}:dead:`,
      all: (queue: QueueName, tenant: string | undefined) => `${tagged(queue)}:dead:all:${tenant ?? '*'}`,
      types: (queue: QueueName, tenant: string | undefined) => `${tagged(queue)}:dead:types:${tenant ?? '*'}`,
      ofType: (queue: QueueName, tenant: string | undefined, typeSha1: string) => `${tagged(queue)}:dead:type:${tenant ?? '*'}:${typeSha1}`,
      mark: (queue: QueueName) => `${tagged(queue)}:dead:mark`,
    },

    /** The queue's jobs stopped on request (id -> when): BullMQ keeps them as failed; the counts tell them apart. */
    cancelled: (queue: QueueName) => `${tagged(queue)}:cancelled`,

    /** Jobs of the queue the workers finished in one minute (minutes since the epoch): a hash of completed, failed, cancelled. */
    throughput: (queue: QueueName, epochMinute: number) => `${tagged(queue)}:throughput:${epochMinute}`,

    /** A job's backup, scan or update record (a hash). */
    record: (kind: QueueName, id: string) => `${tagged(kind)}:record:${id}`,
    /** A server's records of one kind, by start time. */
    serverRecords: (kind: QueueName, serverId: string) => `${tagged(kind)}:server:${serverId}`,

    /** A server's completed backups: ids by completion time, and their entries. */
    backupOrder: (serverId: string) => `${tagged('backup')}:backups:${serverId}:order`,
    backupEntries: (serverId: string) => `${tagged('backup')}:backups:${serverId}:entries`,
    /** A server's completed restores: ids by completion time, and their entries. */
    restoreOrder: (serverId: string) => `${tagged('backup')}:restores:${serverId}:order`,
    restoreEntries: (serverId: string) => `${tagged('backup')}:restores:${serverId}:entries`,
    /** Restore directories to delete on a host (a set): the processes of that host delete them. */
    restoreRemovals: (host: string) => `${tagged('backup')}:restores-to-delete:${host}`,

    /** Where cancel requests are published to every worker process (a channel: Cluster relays it to every node). */
    cancelChannel: `${ns}:cancel`,
    /** A job's pending cancel request (its value is the reason). */
    cancelRequest: (jobId: string) => `${ofJob(jobId)}:cancel:${jobId}`,

    /** The job a dead letter was replayed as. */
    replayed: (jobId: string) => `${ofJob(jobId)}:replayed:${jobId}`,

    /** A tenant's Idempotency-Key and the response it answers with; the key is stored hashed. */
    /** A browser's ticket for one job's event stream (by the ticket's hash), 60 s. */
    streamTicket: (hash: string) => `${ns}:ticket:${hash}`,
    idempotency: (tenant: string, key: string) => `${ns}:idem:${tenant}:${createHash('sha256').update(key).digest('hex')}`,
    /** A tenant's stored Idempotency-Keys (redis key -> expiry): their cap. */
    idempotencyIndex: (tenant: string) => `${ns}:idem-index:${tenant}`,

    /** The namespace of @fastify/rate-limit's counters (it appends its own key). */
    rateLimitNamespace: `${ns}:ratelimit:`,

    /** The channel on which workers say "job X has new log lines". */
    jobLogChannel: `${ns}:joblog`,

    /** One job at a time per server and kind. */
    serverLock: (kind: QueueName, serverId: string) => `${tagged(kind)}:lock:${serverId}`,

    /** The update command running on a server: its process group, machine and worker process (running-commands.ts). */
    runningCommand: (serverId: string) => `${tagged('update')}:command:${serverId}`,

    /** A tenant's schedule names in a queue (its BullMQ job schedulers are `<queue>~<tenant>~<name>`). */
    tenantSchedules: (queue: QueueName, tenant: string) => `${tagged(queue)}:schedules:${tenant}`,

    /** A tenant's slots of active jobs in a queue (job id -> expiry). */
    tenantSlots: (queue: QueueName, tenant: string) => `${tagged(queue)}:slots:${tenant}`,
    /**
     * A tenant's temporary override of TENANT_MAX_ACTIVE, one copy per queue:
     * the script that takes a slot reads it with the slots, on their node.
     */
    tenantLimit: (queue: QueueName, tenant: string) => `${tagged(queue)}:tenant-limit:${tenant}`,
    /**
     * A tenant's temporary throttle of job starts in a queue (`max:perMs`, with the throttle's time to live), one
     * copy per throttled queue, and its starts in the queue (member -> start time) that the throttle counts: the
     * script that takes a slot reads and writes both with the slots, on their node.
     */
    tenantThrottle: (queue: QueueName, tenant: string) => `${tagged(queue)}:throttle:${tenant}`,
    tenantStarts: (queue: QueueName, tenant: string) => `${tagged(queue)}:starts:${tenant}`,
    /**
     * Fair dispatch of a queue (src/redis/lua/fair-dispatch.ts, whose scripts name these keys from \`product\`,
     * the queue's product key prefix, as they are spelled here): the tenants with parked jobs by turn, the turn
     * counter, parked job id -> tenant, and a tenant's lane of parked jobs.
     */
    fair: (queue: QueueName) => ({
      product: `${tagged(queue)}:`,
      ring: `${tagged(queue)}:fair:ring`,
      turn: `${tagged(queue)}:fair:turn`,
      parked: `${tagged(queue)}:fair:parked`,
      lane: (tenant: string) => `${tagged(queue)}:fair:lane:${tenant}`,
    }),
    /** A queue's concurrency set at run time (worker:scale), over QUEUE_CONCURRENCY: every worker process follows it. */
    queueConcurrency: (queue: QueueName) => `${tagged(queue)}:concurrency`,
    /** The slots of GLOBAL_MAX_ACTIVE: every active job of every queue (job id -> expiry), under the global tag. */
    globalSlots: `${global}:slots`,

    /** The worker processes, by the time they last reported. */
    workerRegistry: `${global}:workers`,
    /** What one worker process reported (a hash). */
    workerProcess: (id: string) => `${global}:workers:${id}`,

    /** The BullMQ queue that delivers webhooks (its name: `{webhooks}`, a hash tag of its own; not a job queue). */
    webhookQueue: '{webhooks}',
    /** BullMQ's event stream of a job queue, which its scripts append to as they move a job (the webhook dispatcher reads it). */
    queueEvents: (queue: QueueName) => `${prefix}:${QUEUES[queue].redisName}:events`,
    /** How far the webhook dispatcher has read a queue's event stream (a stream entry id). */
    webhookCursor: (queue: QueueName) => `${tagged(queue)}:webhook-cursor`,
    /** A webhook registration (a hash: tenant, url, events, secrets). */
    webhook: (id: string) => `${webhooksTag}:webhook:${id}`,
    /** A tenant's webhook ids (a set): its list and its cap. */
    tenantWebhooks: (tenant: string) => `${webhooksTag}:tenant:${tenant}`,
    /** The tenants that have a webhook (a set): the dispatcher skips the others' events without reading their jobs. */
    webhookTenants: `${webhooksTag}:tenants`,
    /** A webhook's delivery log: its latest attempts, newest first (a capped list of JSON entries). */
    webhookDeliveries: (id: string) => `${webhooksTag}:deliveries:${id}`,

    /** Which layout of these keys the data is in, and the lock of the migration that moves older ones (migrate-keys.ts). */
    schema: `${global}:schema`,
    migrationLock: `${global}:migrating`,
  };
}

export type RedisKeys = ReturnType<typeof redisKeys>;
