import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../src/config.js';
import { redisKeys } from '../src/redis/keys.js';
import { postWebhook } from '../src/webhooks/deliver.js';
import { WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import { DELIVERY_WINDOW_MS, deliveryBackoffMs, type DeliveryJob } from '../src/webhooks/events.js';
import { signatureHeader } from '../src/webhooks/signing.js';
import { signingSecrets, WebhookStore } from '../src/webhooks/store.js';

/** Deliveries in flight at once per worker process (each mostly waits on the network). */
const DELIVERY_CONCURRENCY = 10;

export type DeliveryResult = { statusCode: number } | { skipped: string };

/**
 * One attempt of a delivery: sign (with every secret that signs now) and
 * POST the event's body, record the attempt in the webhook's log, and fail
 * the attempt on anything but a 2xx, so that BullMQ tries again after
 * deliveryBackoffMs with the same job, hence the same `webhook-id`. A
 * refused address, the last attempt and a delivery past its day fail for good.
 */
export function deliveryProcessor(store: WebhookStore, config: Config, logger: Logger) {
  return async (job: Job<DeliveryJob>): Promise<DeliveryResult> => {
    const { webhookId, tenant, event, jobId, body } = job.data;
    const hook = await store.get(webhookId, tenant);
    if (!hook) return { skipped: 'the webhook was removed' };
    const msgId = job.id!;
    const now = Date.now();
    const timestamp = Math.floor(now / 1000);
    const headers = {
      'webhook-id': msgId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(signingSecrets(hook, now), msgId, timestamp, body),
    };
    const out = await postWebhook(hook.url, headers, body, { timeoutMs: config.webhooks.timeoutMs, allowPrivate: config.webhooks.allowPrivate });
    const attempt = job.attemptsMade + 1;
    const final = !out.ok && (out.final || attempt >= (job.opts.attempts ?? 1) || Date.now() >= job.timestamp + DELIVERY_WINDOW_MS);
    await store
      .recordAttempt(webhookId, {
        id: msgId,
        event,
        jobId,
        attempt,
        status: out.ok ? 'delivered' : final ? 'failed' : 'retrying',
        statusCode: out.statusCode,
        error: out.ok ? null : out.error,
        at: new Date(now).toISOString(),
        durationMs: out.durationMs,
      })
      .catch((err: Error) => logger.warn({ webhookId, msgId, err: err.message }, 'delivery attempt not logged'));
    if (out.ok) return { statusCode: out.statusCode };
    logger.info({ webhookId, msgId, event, jobId, attempt, err: out.error, final }, 'webhook delivery attempt failed');
    throw final ? new UnrecoverableError(out.error) : new Error(out.error);
  };
}

/** The webhook side of a worker process: the dispatcher that turns job outcomes into deliveries, and the `{webhooks}` worker. */
export type WebhookRuntime = { worker: Worker; close(): Promise<void> };

export function startWebhooks(connection: Redis, config: Config, logger: Logger): WebhookRuntime {
  const prefix = config.queuePrefix;
  const name = redisKeys(prefix).webhookQueue;
  const store = new WebhookStore(connection, prefix);
  const queue = new Queue<DeliveryJob>(name, { connection, prefix });
  queue.on('error', () => {});
  const dispatcher = new WebhookDispatcher(connection, prefix, store, queue, logger);
  const worker = new Worker<DeliveryJob, DeliveryResult>(name, deliveryProcessor(store, config, logger), {
    connection,
    prefix,
    concurrency: DELIVERY_CONCURRENCY,
    settings: { backoffStrategy: (attemptsMade, _type, _err, job) => deliveryBackoffMs(attemptsMade, config.webhooks.backoffBaseMs, job?.timestamp ?? Date.now()) },
  });
  worker.on('error', (err) => logger.error({ queue: name, err: err.message }, 'webhook worker error'));
  dispatcher.start();
  return {
    worker,
    close: async () => {
      await dispatcher.stop();
      await worker.close();
      await queue.close();
    },
  };
}
