/**
 * The one error family of the API. Each error carries a stable `code` that
 * callers can branch on; the error handler turns it into the envelope.
 */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequestError extends AppError {
  constructor(message: string, code = 'VALIDATION_ERROR') {
    super(400, code, message);
  }
}

/** One rejected item of a bulk request: where it is in the list and why. */
export type ItemError = { index: number; code: string; message: string };

/** A bulk request with invalid items: nothing of it was enqueued; `details` names each bad item. */
export class BulkInvalidError extends BadRequestError {
  constructor(
    readonly details: ItemError[],
    total: number,
  ) {
    super(
      `${details.length} of ${total} jobs are invalid, so none was enqueued; error.details lists each (first: ${details[0]?.message})`,
      'BULK_INVALID',
    );
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'A valid bearer token is required.', code = 'UNAUTHORIZED') {
    super(401, code, message, { 'www-authenticate': 'Bearer' });
  }
}

export class ForbiddenError extends AppError {
  constructor(message: string) {
    super(403, 'FORBIDDEN', message);
  }
}

export class NotFoundError extends AppError {
  constructor(what: string, code = 'NOT_FOUND') {
    super(404, code, `${what} was not found.`);
  }
}

export class ConflictError extends AppError {
  constructor(message: string, code = 'CONFLICT') {
    super(409, code, message);
  }
}

export const RETRY_AFTER_SECONDS = 5;

export class ServiceUnavailableError extends AppError {
  constructor(message = 'Redis is unavailable; try again shortly.', code = 'REDIS_UNAVAILABLE') {
    super(503, code, message, { 'retry-after': String(RETRY_AFTER_SECONDS) });
  }
}

/**
 * True for the errors ioredis raises when it cannot talk to Redis right now
 * (no connection, offline queue disabled, connection lost mid-command).
 */
/** Redis at its maxmemory with the noeviction policy the product requires: it refuses writes until memory frees up. */
export function isRedisFullError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('OOM ');
}

export function isRedisConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: string };
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'ENOENT', 'EPIPE', 'ETIMEDOUT'].includes(e.code)) return true;
  return /Connection is closed|Stream isn't writeable|enableOfflineQueue|Command timed out|Socket closed unexpectedly/i.test(
    e.message,
  );
}
