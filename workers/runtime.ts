import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createWorkers } from './create-workers.js';
import { SHUTDOWN_CUT } from './deps.js';
import { startWebhooks } from './webhooks.js';
import type { Config } from '../src/config.js';
import type { Inventory } from '../src/inventory.js';
import { QUEUE_NAMES, type QueueName } from '../src/jobs/index.js';
import { BackupCatalog } from '../src/backups/catalog.js';
import { RestoreCatalog } from '../src/backups/restores.js';
import { CancelListener } from '../src/coordination/cancel-listener.js';
import { ConcurrencyFollower } from '../src/coordination/concurrency-follower.js';
import { readConcurrencyOverrides } from '../src/coordination/concurrency-overrides.js';
import { GlobalSlots, TenantSlots } from '../src/coordination/tenant-slots.js';
import { RecordStore } from '../src/store/records.js';
import { ServerLocks } from '../src/coordination/server-locks.js';
import { RunningCommands } from '../src/coordination/running-commands.js';
import { WorkerReporter } from '../src/coordination/worker-reporter.js';
import { DeadLetterIndex } from '../src/store/dead-letter-index.js';
import { createRedis, type RedisTarget } from '../src/redis/connection.js';
import { redisKeys } from '../src/redis/keys.js';
import { migrateKeys } from '../src/redis/migrate-keys.js';

/** How long each step of a shutdown past the graceful part may take. */
const FORCED_STEP_MS = 2000;
/** How often a worker process deletes the restore directories of its machine that were removed elsewhere. */
const RESTORE_SWEEP_MS = 30_000;

/** Whether `work` settled within `ms` (it is not stopped, only no longer waited for). */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = work.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The workers of one process, inside `npm start` or alone (`npm run worker`). */
export type WorkerRuntime = {
  workers: Record<QueueName, Worker>;
  /** The workers' own connection: it waits for Redis instead of failing. */
  connection: Redis;
  /** Let active jobs finish (up to SHUTDOWN_TIMEOUT_MS), then close the workers and their connections. */
  close(): Promise<void>;
};

/**
 * Start one BullMQ worker per queue on connections that wait for Redis
 * forever, so an outage only pauses them; report to the worker registry and
 * listen for cancel requests from every API process.
 */
export async function startWorkers(opts: { config: Config; inventory: Inventory; redis: RedisTarget; logger: Logger }): Promise<WorkerRuntime> {
  const { config, logger } = opts;
  const connection = createRedis(opts.redis, 'worker', 'jobs-api:worker');
  connection.on('error', () => {});
  const moved = await migrateKeys(connection, config.queuePrefix);
  if (moved) logger.info(moved, 'moved the keys of an earlier version to this version\'s layout');
  const records = new RecordStore(connection, config.queuePrefix);
  const locks = new ServerLocks(connection, config.queuePrefix, (key) => logger.warn({ key }, 'a server lock expired while its job still ran'));
  const cancels = new CancelListener(connection, config.queuePrefix);
  const logChannel = redisKeys(config.queuePrefix).jobLogChannel;
  const catalog = new BackupCatalog(connection, config.queuePrefix);
  const restores = new RestoreCatalog(connection, config.queuePrefix, config.restoreDir);
  // Restore directories removed through an API process of another machine are deleted here, on theirs.
  const deleteRestores = () =>
    restores.deletePending().then(
      (deleted) => deleted.length > 0 && logger.info({ deleted }, 'deleted removed restore directories'),
      () => {},
    );
  void deleteRestores();
  const restoreSweep = setInterval(() => void deleteRestores(), RESTORE_SWEEP_MS).unref();
  const running = new Map<string, string>();
  const commands = new RunningCommands(connection, config.queuePrefix);
  // What a worker process of this machine that died (SIGKILL, a crash) left running: end it now, not only
  // when the next job of that server comes.
  void Promise.all(
    opts.inventory.servers
      .filter((s) => s.update)
      .map(async (s) => {
        const leftover = await commands.endLeftover(s.id).catch(() => undefined);
        if (leftover?.status === 'ended') logger.warn({ serverId: s.id, pgid: leftover.entry.pgid, job: leftover.entry.jobId }, 'ended an update command a dead worker process left running');
      }),
  );
  // Fair scheduling's capacity follows each queue's live concurrency (worker:scale), read from its worker.
  const concurrencyNow = (queue: QueueName) => workers[queue].concurrency;
  // A process started after a worker:scale starts at the queue's concurrency then, not at QUEUE_CONCURRENCY's.
  const overrides = await readConcurrencyOverrides(connection, config.queuePrefix);
  const startConcurrency = Object.fromEntries(QUEUE_NAMES.map((q) => [q, overrides[q] ?? config.queueConcurrency[q]])) as Record<QueueName, number>;
  const slots = new TenantSlots(connection, config.queuePrefix, config.tenantMaxActive, config.tenantMaxShare, concurrencyNow);
  const workers: Record<QueueName, Worker> = createWorkers(connection, config.queuePrefix, {
    running,
    commands,
    config,
    inventory: opts.inventory,
    records,
    logger,
    locks,
    cancels,
    catalog,
    restores,
    redis: connection,
    slots,
    ...(config.globalMaxActive > 0 ? { global: new GlobalSlots(connection, config.queuePrefix, config.globalMaxActive) } : {}),
    notifyLog: (jobId) => connection.publish(logChannel, jobId),
  }, startConcurrency);
  // A job that failed for good is counted in the dead-letter aggregate at once (a grouping would count it later).
  const deadLetters = new DeadLetterIndex(connection, config.queuePrefix);
  for (const queue of QUEUE_NAMES) {
    workers[queue].on('failed', (job) => {
      if (job?.id) void deadLetters.reconcile(queue, [{ id: job.id, reason: job.failedReason }]).catch(() => {});
    });
  }
  // worker:scale: each queue's concurrency set at run time, followed by every worker process.
  const reporter = new WorkerReporter(connection, config.queuePrefix, workers);
  const follower = new ConcurrencyFollower(connection, config.queuePrefix, workers, config.queueConcurrency, (queue, from, to) => {
    logger.info({ queue, from, to }, 'queue concurrency changed (worker:scale)');
    reporter.changed();
  });
  follower.start();
  reporter.start();
  // Fair dispatch: slots freed other than by a job's end (expired, a throttle's window, a removal) go to the next tenant in turn.
  slots.fair.start((err) => logger.debug({ err: err.message }, 'fair dispatch: look not made'));
  // Webhooks: job outcomes read from the queues' event streams become deliveries of the {webhooks} queue.
  const webhooks = startWebhooks(connection, config, logger);

  // Cancel requests from any API process reach the worker running the job.
  const subscriber = createRedis(opts.redis, 'worker', 'jobs-api:cancel-listener');
  subscriber.on('error', () => {});
  await cancels.listen(subscriber, (jobId, reason) => {
    for (const w of Object.values(workers)) if (w.cancelJob(jobId, reason)) logger.info({ jobId, reason }, 'job stopped on request');
  });

  // Every step is bounded: with Redis gone, BullMQ's close and a polite QUIT would wait for it for ever.
  const close = async () => {
    clearInterval(restoreSweep);
    follower.stop();
    slots.fair.stop();
    const all = Object.values(workers);
    // The webhook side closes alongside, within the same bound: a delivery cut short is made again later (same webhook-id).
    const closing = Promise.all([...all.map((w) => w.close()), webhooks.close()]);
    if (!(await within(closing, config.shutdownTimeoutMs))) {
      // Past the bound: stop the work of every active job (an update's process group, a backup's streams);
      // each goes back to run again without spending an attempt (runJob), and the workers can close.
      logger.warn({ timeoutMs: config.shutdownTimeoutMs, jobs: Object.fromEntries(running) }, 'active jobs did not finish in time; stopping their work, they run again');
      for (const w of all) w.cancelAllJobs(SHUTDOWN_CUT);
      if (!(await within(closing, FORCED_STEP_MS)) && !(await within(Promise.all([...all, webhooks.worker].map((w) => w.close(true))), FORCED_STEP_MS))) {
        logger.warn({ jobs: [...running.keys()] }, 'the workers did not close (is Redis reachable?); leaving anyway');
      }
    }
    await within(reporter.stop(), FORCED_STEP_MS);
    for (const c of [subscriber, connection]) {
      if (!(c.status === 'ready' && (await within(c.quit(), FORCED_STEP_MS)))) c.disconnect();
    }
  };
  return { workers, connection, close };
}
