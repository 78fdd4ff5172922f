import { BadRequestError, ConflictError, NotFoundError, type AppError } from '../errors.js';
import type { JobState } from '../jobs/index.js';
import type { JobPage, ListOutcome } from '../store/job-store.js';

/**
 * Why an operation on a job did not happen: the store's outcomes (`missing`,
 * `active`, `not-failed`) and what the services find when they check a job's
 * state. `jobError` is the one place that says which error (status, code and
 * message) each of them answers with.
 */
export type JobRefusal =
  /** There is no such job, or the caller may not see it. */
  | { status: 'missing' }
  /** A running job cannot be removed. */
  | { status: 'active' }
  /** Only a failed job can be retried. */
  | { status: 'not-failed'; state: JobState }
  /** Only a failed job is a dead letter. */
  | { status: 'not-dead-letter'; state: JobState }
  /** Only a delayed job can be promoted. */
  | { status: 'not-delayed'; state: JobState }
  /** A job that has ended cannot be cancelled. */
  | { status: 'finished'; state: 'completed' | 'failed' | 'cancelled' }
  /** A running job completed before the cancel reached it. */
  | { status: 'completed-first' };

export function jobError(id: string, refusal: JobRefusal): AppError {
  switch (refusal.status) {
    case 'missing':
      return new NotFoundError(`Job "${id}"`, 'JOB_NOT_FOUND');
    case 'active':
      return new ConflictError(`Job "${id}" is running; wait for it to finish (or fail) before removing it.`, 'JOB_ACTIVE');
    case 'not-failed':
      return new ConflictError(`Job "${id}" is ${refusal.state}; only a failed or cancelled job can be retried.`, 'JOB_NOT_FAILED');
    case 'not-dead-letter':
      return new ConflictError(`Job "${id}" is ${refusal.state}; only a failed job is a dead letter.`, 'JOB_NOT_FAILED');
    case 'not-delayed':
      return new ConflictError(`Job "${id}" is ${refusal.state}; only a delayed job can be promoted.`, 'JOB_NOT_DELAYED');
    case 'finished':
      return new ConflictError(`Job "${id}" has already ${refusal.state === 'cancelled' ? 'been cancelled' : refusal.state}; there is nothing to cancel.`, 'JOB_FINISHED');
    case 'completed-first':
      return new ConflictError(`Job "${id}" completed before it could be stopped.`, 'JOB_FINISHED');
  }
}

/** `found`, or the 404 of job `id` when it is undefined (no such job, or not the caller's). */
export function foundJob<T>(id: string, found: T | undefined): T {
  if (found === undefined) throw jobError(id, { status: 'missing' });
  return found;
}

/** A listing's page (jobs, servers), or the 400 of a cursor this API did not return. */
export function cursorPage<P extends object>(outcome: P | { status: 'invalid-cursor' }): P {
  if ('status' in outcome && outcome.status === 'invalid-cursor') {
    throw new BadRequestError('querystring.cursor: not a cursor this API returned; use nextCursor from the previous page', 'INVALID_CURSOR');
  }
  return outcome as P;
}

/** The page, or the 400 of a cursor this API did not return. */
export function jobPage(outcome: ListOutcome): JobPage {
  return cursorPage(outcome);
}
