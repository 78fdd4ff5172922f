import { createHash } from 'node:crypto';
import { fullJitterMs } from '../jobs/retry.js';

/** What a webhook may subscribe to. `job.failed` is a job that failed for good (not an attempt that will be retried). */
export const WEBHOOK_EVENTS = ['job.completed', 'job.failed', 'job.cancelled', 'job.progress'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** The body of a delivery (Standard Webhooks: type, timestamp, data). */
export type WebhookPayload = {
  type: WebhookEvent;
  timestamp: string;
  data: {
    jobId: string;
    type: string;
    /** completed, failed, active (progress); `removed` for a job cancelled before it started, with `previousState`. */
    state: string;
    result?: unknown;
    failedReason?: string;
    progress?: unknown;
    previousState?: string;
  };
};

/** A delivery job of the `{webhooks}` queue: one event for one webhook; its id is the `webhook-id` of every attempt. */
export type DeliveryJob = {
  webhookId: string;
  tenant: string;
  event: WebhookEvent;
  jobId: string;
  /** The body, as sent on every attempt. */
  body: string;
};

/** A delivery is tried again for up to this long after its event (then it fails for good). */
export const DELIVERY_WINDOW_MS = 24 * 3600 * 1000;
/** The longest wait between two attempts. */
export const DELIVERY_MAX_BACKOFF_MS = 6 * 3600 * 1000;
/** BullMQ needs a number of attempts; the window above is what ends a delivery in practice. */
export const DELIVERY_MAX_ATTEMPTS = 100;
/** Delivery jobs are kept this long once done: a re-read event within it finds its job and adds no second one. */
const KEEP_DONE_SECONDS = 3 * 24 * 3600;

export const DELIVERY_JOB_OPTIONS = {
  attempts: DELIVERY_MAX_ATTEMPTS,
  backoff: { type: 'webhook' },
  removeOnComplete: { age: KEEP_DONE_SECONDS },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

/**
 * The wait before attempt `attemptsMade + 1`: exponential with full jitter
 * (uniform between 0 and base * 2^(n-1), at most DELIVERY_MAX_BACKOFF_MS),
 * and never past the delivery's window, so that the last attempt comes at its end.
 */
export function deliveryBackoffMs(attemptsMade: number, baseMs: number, firstTriedAt: number, now = Date.now(), random = Math.random): number {
  const left = firstTriedAt + DELIVERY_WINDOW_MS - now;
  return Math.max(0, Math.min(fullJitterMs(attemptsMade, baseMs, DELIVERY_MAX_BACKOFF_MS, random), left));
}

/**
 * The delivery job id (and `webhook-id` header) of an event for a webhook:
 * derived from the event's place in its queue's event stream, so every
 * process that reads that entry names the same job, and BullMQ adds it once.
 */
export function deliveryId(webhookId: string, source: string): string {
  return `msg_${createHash('sha256').update(`${webhookId}\n${source}`).digest('base64url').slice(0, 32)}`;
}
