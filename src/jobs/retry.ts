/**
 * How a job that failed is tried again: exponential backoff with full jitter
 * and a cap. Retry n (after attempt n failed) waits a random time in
 * [0, min(maxDelay, delay × 2^(n−1))): the ceilings double (5 s, 10 s, 20 s...
 * with the defaults) while the jitter spreads a burst of failures (a server
 * that went down under a hundred jobs) instead of retrying them all at once.
 */
export const RETRY_BACKOFF_TYPE = 'full-jitter';

/** A job's `backoff` option as stored with it (BullMQ keeps the object as given; the worker reads it back). */
export type RetryBackoff = { type: typeof RETRY_BACKOFF_TYPE; delay: number; maxDelay: number };

/** The longest the ceiling can double to before the cap (2^40 × 1 ms is beyond any cap allowed). */
const MAX_DOUBLINGS = 40;

/** The ceiling of retry n's wait (n = attempts made so far, 1 for the first retry). */
export function retryCeilingMs(attemptsMade: number, delayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, delayMs * 2 ** Math.min(Math.max(0, attemptsMade - 1), MAX_DOUBLINGS));
}

/** The wait before retry n: uniform below its ceiling (full jitter). */
export function fullJitterMs(attemptsMade: number, delayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * retryCeilingMs(attemptsMade, delayMs, maxDelayMs));
}
