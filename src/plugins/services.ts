import { Queue, type Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { StreamTickets } from '../services/stream-tickets.js';
import { BackupCatalog } from '../backups/catalog.js';
import { RestoreCatalog } from '../backups/restores.js';
import { CancelRequests } from '../coordination/cancel-requests.js';
import { parseConcurrency } from '../coordination/concurrency-overrides.js';
import { FairDispatch } from '../coordination/fair-dispatch.js';
import { redisKeys } from '../redis/keys.js';
import type { Config } from '../config.js';
import { ServiceUnavailableError } from '../errors.js';
import type { Inventory } from '../inventory.js';
import { IndexSweeper } from '../store/index-sweeper.js';
import { JobService } from '../services/jobs.js';
import { JobExplainer } from '../services/job-explain.js';
import { JobStore } from '../store/job-store.js';
import { ReplicaConfirmer } from '../store/replication.js';
import { DeadLetters } from '../services/dead-letters.js';
import { QueueOps } from '../services/queue-ops.js';
import { TenantAdmin } from '../services/tenant-admin.js';
import { QueueCapacity } from '../services/queue-capacity.js';
import { StatsService } from '../services/stats.js';
import { JobEventsHub } from '../services/job-events.js';
import { JobFeeds } from '../services/job-feeds.js';
import { RecordStore } from '../store/records.js';
import { Schedules } from '../services/schedules.js';
import { QueuedQuota } from '../services/quotas.js';
import { WebhookService } from '../services/webhooks.js';
import { defaultJobOptions, QUEUES, QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { queueOfJobId } from '../jobs/job-id.js';
import { migrateKeys } from '../redis/migrate-keys.js';
import { assertNoEviction, checkTarget, createRedis, waitReady, type RedisTarget } from '../redis/connection.js';
import { isApiRoute } from '../http/api-route.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    inventory: Inventory;
    /** The producers' connection: fails fast while Redis is away. */
    redis: Redis;
    queues: Record<QueueName, Queue>;
    jobs: JobService;
    /** Why a job is not running (GET /api/jobs/:id/explain). */
    explainer: JobExplainer;
    /** Queue-wide operations (admin). */
    queueOps: QueueOps;
    /** Each queue's concurrency at run time (worker:scale), followed by every worker process. */
    capacity: QueueCapacity;
    deadLetters: DeadLetters;
    schedules: Schedules;
    tenants: TenantAdmin;
    /** Job counts, queue health, worker processes and readiness (metrics, workers and health routes). */
    stats: StatsService;
    /** Job events for long polls and event streams: one QueueEvents per queue in this process. */
    events: JobEventsHub;
    /** One feed per followed job in this process: the event streams of a job share its reads. */
    feeds: JobFeeds;
    /** Tickets that open one job's event stream for a browser (EventSource sends no Authorization header). */
    tickets: StreamTickets;
    /** A tenant's webhooks: registrations, secrets, delivery logs (the deliveries themselves are the workers'). */
    webhooks: WebhookService;
    /** The in-process workers, or null with WORKERS=off. */
    workers: Record<QueueName, Worker> | null;
  }
}

/** How often an API process looks for keys of an earlier version (one EXISTS call). */
const UPGRADE_CHECK_MS = 60_000;

/**
 * The producer side: one fail-fast connection shared by the three queues and
 * the job store, the Redis policy check, and a 503 for API calls while Redis
 * is unreachable (ioredis reconnects by itself; the API recovers with it).
 */
export const servicesPlugin = fp(
  async (app: FastifyInstance, opts: { config: Config; inventory: Inventory; redis: RedisTarget }) => {
    const { config } = opts;
    await checkTarget(opts.redis);
    const redis = createRedis(opts.redis, 'producer', 'jobs-api:producer', { commandTimeoutMs: config.redisCommandTimeoutMs });
    let lastError = '';
    redis.on('error', (err: Error) => {
      if (err.message !== lastError) app.log.warn({ err: err.message }, 'redis connection error');
      lastError = err.message;
    });
    redis.on('ready', () => {
      if (lastError) app.log.info('redis connection is back');
      lastError = '';
    });
    try {
      await waitReady(redis);
      await assertNoEviction(redis);
      const moved = await migrateKeys(redis, config.queuePrefix);
      if (moved) app.log.info(moved, 'moved the keys of an earlier version to this version\'s layout');
    } catch (err) {
      redis.disconnect();
      throw err;
    }

    const queues = Object.fromEntries(
      QUEUE_NAMES.map((name) => [
        name,
        new Queue(QUEUES[name].redisName, { connection: redis, prefix: config.queuePrefix, defaultJobOptions: defaultJobOptions(config.jobDefaults) }),
      ]),
    ) as Record<QueueName, Queue>;
    for (const q of Object.values(queues)) q.on('error', () => {});
    const replicas = config.enqueueReplicas > 0 ? new ReplicaConfirmer(redis, config.enqueueReplicas, config.enqueueWaitMs) : undefined;
    // Fair dispatch: the capacity it divides is the worker processes' (from their reports) × the queue's concurrency (worker:scale's, or QUEUE_CONCURRENCY).
    const fair = new FairDispatch(redis, config.queuePrefix, config.tenantMaxActive, config.tenantMaxShare, async (q) => parseConcurrency(await redis.get(redisKeys(config.queuePrefix).queueConcurrency(q))) ?? config.queueConcurrency[q]);
    const store = new JobStore(redis, config.queuePrefix, queues, replicas, fair);
    store.onIndexError = (err, jobId) => app.log.error({ err: err.message, jobId }, 'job accepted but not indexed for listing');

    app.decorate('redis', redis);
    app.decorate('queues', queues);
    const catalog = new BackupCatalog(redis, config.queuePrefix);
    const records = new RecordStore(redis, config.queuePrefix);
    const cancels = new CancelRequests(redis, config.queuePrefix);
    const quota = new QueuedQuota(redis, config.queuePrefix, config.tenantMaxQueued);
    const jobs = new JobService({ store, inventory: opts.inventory, backups: catalog, restores: new RestoreCatalog(redis, config.queuePrefix, config.restoreDir), records, cancels, encryption: config.backupKey !== undefined, quota });
    app.decorate('jobs', jobs);
    app.decorate('queueOps', new QueueOps(queues, store, cancels, config.queueRateLimits, config.queueConcurrency, fair));
    app.decorate('deadLetters', new DeadLetters(redis, config.queuePrefix, store, jobs));
    const schedules = new Schedules(queues, jobs, redis, config.queuePrefix, config.schedules);
    await schedules.indexExisting();
    app.decorate('schedules', schedules);
    const events = new JobEventsHub(opts.redis, config.queuePrefix, app.log as unknown as Logger);
    app.decorate('events', events);
    app.decorate(
      'feeds',
      new JobFeeds(events, {
        logs: async (jobId, from) => {
          const queue = queueOfJobId(jobId);
          return queue ? (await queues[queue].getJobLogs(jobId, from, -1)).logs : [];
        },
        view: (jobId) => store.get(jobId, undefined),
      }),
    );
    app.decorate('tickets', new StreamTickets(redis, config.queuePrefix));
    const tenants = new TenantAdmin(redis, config.queuePrefix, config.tenantMaxActive, config.tenantMaxShare, config.queueConcurrency);
    app.decorate('tenants', tenants);
    app.decorate('capacity', new QueueCapacity(redis, config.queuePrefix, config.queueConcurrency));
    app.decorate('explainer', new JobExplainer(redis, config.queuePrefix, queues, jobs, tenants, config.queueRateLimits));
    app.decorate('webhooks', new WebhookService(redis, config.queuePrefix, { allowPrivate: config.webhooks.allowPrivate, maxPerTenant: config.webhooks.maxPerTenant }));
    app.decorate('stats', new StatsService(redis, config.queuePrefix, queues, () => app.workers));

    app.addHook('onRequest', async (request) => {
      if (redis.status !== 'ready' && isApiRoute(request)) throw new ServiceUnavailableError();
    });

    const sweeper = new IndexSweeper(store, { onError: (err) => app.log.warn({ err: err.message }, 'job index sweep failed') });
    sweeper.start();

    // During a rolling upgrade, processes of an earlier version still write its key names: move what they write.
    const upgradeCheck = setInterval(() => {
      migrateKeys(redis, config.queuePrefix).then(
        (moved) => moved && app.log.warn(moved, 'moved keys that a process of an earlier version wrote (is one still running?)'),
        (err: Error) => app.log.warn({ err: err.message }, 'key migration check failed'),
      );
    }, UPGRADE_CHECK_MS).unref();

    app.addHook('onClose', async () => {
      clearInterval(upgradeCheck);
      await sweeper.stop();
      await events.close();
      await Promise.all(Object.values(queues).map((q) => q.close()));
      await redis.quit().catch(() => redis.disconnect());
    });
  },
  { name: 'services' },
);
