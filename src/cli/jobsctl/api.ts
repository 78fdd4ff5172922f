/**
 * jobsctl's side of the REST API: the exit codes a script branches on, the
 * error that carries one, and the client that turns answers into data or
 * errors. HTTP only: JOBS_API_URL and JOBS_API_TOKEN, nothing else.
 */

/** The scripting contract shared with the Python `jobsapi` command (README, "Exit codes"). */
export const EXIT = {
  OK: 0,
  /** Something unexpected (a bug, a malformed answer). */
  ERROR: 1,
  /** Wrong usage: unknown command or option, missing value, no token, a destructive command without --yes when stdin is not a terminal. */
  USAGE: 2,
  /** The command found what it looks for (queue:stuck: stuck jobs). */
  FOUND: 3,
  /** job:watch, job:logs --follow, --wait: the job failed, was cancelled or was removed before it ended. */
  JOB_FAILED: 4,
  /** --wait, job:watch --timeout: the wait ended before the job did. */
  TIMEOUT: 5,
  /** The API refused the request (400, 404, 409, 422, 429). */
  REFUSED: 6,
  /** The token is missing, invalid or lacks the scope (401, 403). */
  UNAUTHORIZED: 7,
  /** The API cannot be reached or is unavailable (connection refused, 5xx). */
  UNAVAILABLE: 8,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The HTTP status, when the API answered. */
    readonly status?: number,
    /** Retry-After of the answer, in seconds. */
    readonly retryAfterSec?: number,
  ) {
    super(message);
  }

  /** Worth asking again after a pause: the API was unreachable, restarting or busy (never a 500, which is a bug). */
  get transient(): boolean {
    if (this.status === undefined) return this.exitCode === EXIT.UNAVAILABLE;
    return this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

/** A job as GET /api/jobs/:id answers it. */
export type JobView = {
  id: string;
  queue: string;
  type: string;
  tenant: string;
  state: string;
  progress: number;
  attempts: number;
  maxAttempts: number;
  data: unknown;
  result: unknown;
  failedReason: string | null;
  createdAt: string;
  processedAt: string | null;
  finishedAt: string | null;
};

export const jobEnded = (job: { state: string }) => job.state === 'completed' || job.state === 'failed' || job.state === 'cancelled';

export const jobPath = (id: string) => `/api/jobs/${encodeURIComponent(id)}`;

type Envelope<T> = { success?: boolean; data?: T; error?: { code: string; message: string }; requestId?: string };

export class Api {
  constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  /** The raw answer, whatever its status; a CliError (exit 8) when the API cannot be reached. */
  async request(method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<Response> {
    const { body, headers = {}, signal } = init;
    try {
      return await fetch(new URL(path, this.base), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw this.unreachable(err);
    }
  }

  /** The `data` of a successful answer; a CliError with the exit code of the status otherwise. */
  async call<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await this.request(method, path, { body, headers });
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw this.unreachable(err);
    }
    let parsed: Envelope<T> = {};
    try {
      parsed = JSON.parse(text) as Envelope<T>;
    } catch {
      // Not JSON: reported below by status.
    }
    if (res.ok && parsed.success) return parsed.data as T;
    throw Api.refusal(method, path, res, parsed);
  }

  /** The error a refused or failed answer stands for (its body already read into `parsed`, or read here). */
  static async errorOf(method: string, path: string, res: Response): Promise<CliError> {
    let parsed: Envelope<unknown> = {};
    try {
      parsed = JSON.parse(await res.text()) as Envelope<unknown>;
    } catch {
      // Not JSON, or the body was cut: reported by status.
    }
    return Api.refusal(method, path, res, parsed);
  }

  private static refusal(method: string, path: string, res: Response, parsed: Envelope<unknown>): CliError {
    const what = parsed.error ? `${parsed.error.code}: ${parsed.error.message}` : `HTTP ${res.status}`;
    const retry = res.headers.get('retry-after');
    const retryAfterSec = retry && /^\d+$/.test(retry) ? Number(retry) : undefined;
    const message = `${method} ${path} failed: ${what}${retry ? ` (retry after ${retry} s)` : ''}${parsed.requestId ? ` [request ${parsed.requestId}]` : ''}`;
    const exit = res.status === 401 || res.status === 403 ? EXIT.UNAUTHORIZED : res.status >= 500 ? EXIT.UNAVAILABLE : EXIT.REFUSED;
    return new CliError(message, exit, res.status, retryAfterSec);
  }

  unreachable(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return new CliError(`cannot reach the Jobs API at ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, EXIT.UNAVAILABLE);
  }
}

/** The client of JOBS_API_URL (default http://localhost:3000) with JOBS_API_TOKEN; no token is a usage error. */
export function api(): Api {
  const token = process.env.JOBS_API_TOKEN;
  if (!token) throw new CliError('JOBS_API_TOKEN is not set: make one with `npm run token -- --sub you --scope admin` and export it', EXIT.USAGE);
  return new Api(process.env.JOBS_API_URL ?? 'http://localhost:3000', token);
}

/** How many transient failures in a row a wait or a stream sits out (about 30 s of pauses) before it gives up. */
const MAX_RETRIES = 8;

/**
 * The pauses of a long-running command (a wait, an event stream) while the API
 * is unreachable, restarting or busy: 0.5 s doubling to 5 s, or the answer's
 * Retry-After; after MAX_RETRIES failures in a row the error stands. One-shot
 * commands never retry: their exit code says what happened.
 */
export class Backoff {
  private failures = 0;

  reset(): void {
    this.failures = 0;
  }

  /** Pause after `err` (at most until `deadline`), or throw it when it is not worth another try. */
  async after(err: unknown, deadline = Infinity): Promise<void> {
    if (!(err instanceof CliError) || !err.transient || this.failures >= MAX_RETRIES) throw err;
    const pause = err.retryAfterSec !== undefined ? err.retryAfterSec * 1000 : Math.min(5000, 500 * 2 ** this.failures);
    this.failures += 1;
    await sleep(Math.max(0, Math.min(pause, deadline - Date.now())));
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
