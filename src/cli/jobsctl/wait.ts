import { Backoff, CliError, EXIT, jobEnded, jobPath, type Api, type JobView } from './api.js';
import { jobSummary, out, type Globals } from './output.js';

/** The longest wait the long-poll route takes in one request (GET /api/jobs/:id?waitMs=). */
const LONG_POLL_MS = 60_000;

export type WaitOutcome = { outcome: 'ended'; job: JobView } | { outcome: 'timeout'; job: JobView };

/**
 * Wait for a job to complete or fail with the long-poll route: one request at
 * a time, each answered as soon as the job ends (or after up to 60 s with its
 * state then), until the job ends or `timeoutMs` passes. `onAnswer` sees every
 * answer (a terminal shows the state). The first read's errors stand (an
 * unknown job is exit 6); later, a job that disappears was removed before it
 * ended (exit 4), and a restarting or busy API is waited out (Backoff).
 */
export async function waitForJob(client: Api, id: string, timeoutMs: number, onAnswer: (job: JobView) => void = () => {}): Promise<WaitOutcome> {
  const deadline = Date.now() + timeoutMs;
  const path = jobPath(id);
  let job = await client.call<JobView>('GET', path);
  const backoff = new Backoff();
  while (!jobEnded(job)) {
    onAnswer(job);
    const left = deadline - Date.now();
    if (left <= 0) return { outcome: 'timeout', job };
    try {
      job = await client.call<JobView>('GET', `${path}?waitMs=${Math.min(LONG_POLL_MS, Math.max(1, left))}`);
      backoff.reset();
    } catch (err) {
      if (err instanceof CliError && err.status === 404) throw removed(id);
      await backoff.after(err, deadline);
    }
  }
  return { outcome: 'ended', job };
}

export const removed = (id: string) => new CliError(`job ${id} was removed before it ended (cancelled before it ran, or deleted)`, EXIT.JOB_FAILED);

/**
 * Wait for the job (--wait of job:get, job:retry, server:*, backup:restore),
 * print it as job:get does, and set the exit code: 0 completed, 4 failed,
 * 5 still running at the timeout. On a terminal, stderr shows the state.
 */
export async function waitAndReport(client: Api, globals: Globals, id: string, timeoutSec = 600): Promise<void> {
  const live = !globals.json && process.stderr.isTTY === true;
  let shown = '';
  const r = await waitForJob(client, id, timeoutSec * 1000, (job) => {
    const line = `${job.id}: ${job.state} ${job.progress}%`;
    if (live && line !== shown) process.stderr.write(`\r\x1b[2K${line}`);
    shown = line;
  });
  if (live && shown) process.stderr.write('\r\x1b[2K');
  const { job } = r;
  if (r.outcome === 'timeout') {
    out(globals, job, () => `${job.id}: still ${job.state} at ${job.progress}% after ${timeoutSec} s`);
    process.exitCode = EXIT.TIMEOUT;
    return;
  }
  out(globals, job, () => jobSummary(job));
  if (job.state === 'failed' || job.state === 'cancelled') process.exitCode = EXIT.JOB_FAILED;
}
