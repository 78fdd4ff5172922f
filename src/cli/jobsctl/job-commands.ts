import { Option, type Command } from 'commander';
import { JOB_STATES, JOB_TYPES } from '../../jobs/index.js';
import { api, CliError, EXIT, jobPath, type Api, type JobView } from './api.js';
import { addEnqueueOptions, addWaitOptions, confirm, dataOption, globalsOf, idempotencyHeaders, intArg, jobOptionsOf, timeArg, queueOption, type EnqueueOptions } from './args.js';
import { followJobEvents, type Ending, type JobEvent } from './follow.js';
import { jobSummary, out, paint, ProgressView, stateColor, table, type Globals } from './output.js';
import { waitAndReport } from './wait.js';

type JobPage = { jobs: JobView[]; nextCursor: string | null };
type LogPage = { jobId: string; start: number; count: number; lines: string[]; nextStart: number | null };

/** The exit code of a job that ended this way: 0 completed, 4 failed, cancelled or removed. */
const exitOf = (ending: Ending) => (ending === 'completed' ? EXIT.OK : EXIT.JOB_FAILED);

/** job:list, job:get, job:watch, job:logs, job:submit, job:cancel, job:retry, job:remove. */
export function addJobCommands(program: Command): void {
  addReadCommands(program);
  addFollowCommands(program);
  addControlCommands(program);
}

/** job:list, job:get. */
function addReadCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('job:list')
    .description('your jobs, newest first, a page at a time (--all: every page)')
    .addOption(queueOption())
    .addOption(new Option('--state <state>', 'only jobs in this state').choices(JOB_STATES))
    .addOption(new Option('--type <type>', 'only jobs of this type').choices(JOB_TYPES))
    .option('--server <id>', 'only jobs on this server')
    .option('--since <time>', 'only jobs created since: 30m, 6h, 7d ago, or ISO 8601 (2026-12-01T08:00:00Z)', timeArg('--since'))
    .option('--until <time>', 'only jobs created before: the same forms as --since', timeArg('--until'))
    .option('--limit <n>', 'jobs per page, 1..100 (default 20; 100 with --all)', intArg('--limit', 1, 100))
    .option('--cursor <cursor>', 'the nextCursor of the previous page (with the same filters)')
    .option('--all', 'follow nextCursor to the last page')
    .action(async (o: { queue?: string; state?: string; type?: string; server?: string; since?: string; until?: string; limit?: number; cursor?: string; all?: boolean }) => {
      const client = api();
      const limit = o.limit ?? (o.all ? 100 : undefined);
      const query = (cursor: string | undefined) =>
        new URLSearchParams({
          ...(o.queue ? { queue: o.queue } : {}),
          ...(o.state ? { state: o.state } : {}),
          ...(o.type ? { type: o.type } : {}),
          ...(o.server ? { serverId: o.server } : {}),
          ...(o.since ? { createdAfter: o.since } : {}),
          ...(o.until ? { createdBefore: o.until } : {}),
          ...(limit ? { limit: String(limit) } : {}),
          ...(cursor ? { cursor } : {}),
        });
      let page = await client.call<JobPage>('GET', `/api/jobs?${query(o.cursor)}`);
      const jobs = [...page.jobs];
      // With filters a page may be short, even empty, while more follow: only a null cursor ends the list.
      while (o.all && page.nextCursor) {
        page = await client.call<JobPage>('GET', `/api/jobs?${query(page.nextCursor)}`);
        jobs.push(...page.jobs);
      }
      out(g(), { jobs, nextCursor: page.nextCursor }, () =>
        table(
          jobs.map((j) => ({ ...j, attempts: `${j.attempts}/${j.maxAttempts}` })),
          [['id', 'JOB'], ['type', 'TYPE'], ['tenant', 'TENANT'], ['state', 'STATE'], ['progress', 'PROGRESS'], ['attempts', 'ATTEMPTS'], ['createdAt', 'CREATED'], ['finishedAt', 'FINISHED']],
        ),
      );
      if (!g().json && page.nextCursor) process.stderr.write(paint('dim', `more: the same command with --cursor=${page.nextCursor} (or --all)`) + '\n');
    });

  addWaitOptions(
    program
      .command('job:get')
      .description('a job\'s status; --wait waits until it completes (exit 0) or fails (exit 4)')
      .argument('<id>', 'the job id'),
  ).action(async (id: string, o: { wait?: boolean; timeout?: number }) => {
    const client = api();
    if (o.wait) return waitAndReport(client, g(), id, o.timeout);
    const job = await client.call<JobView>('GET', jobPath(id));
    out(g(), job, () => jobSummary(job));
  });
}

/** job:watch, job:logs: a job's events and log lines, live. */
function addFollowCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('job:watch')
    .description('follow a job as it runs: a progress bar (plain lines when piped) and its log lines; exit 0 when it completes, 4 when it fails')
    .argument('<id>', 'the job id')
    .option('--timeout <seconds>', 'stop watching after this long (exit 5; default: until the job ends)', intArg('--timeout'))
    .action(async (id: string, o: { timeout?: number }) => {
      const client = api();
      const json = g().json === true;
      const view = new ProgressView(id);
      let last: JobView | undefined;
      const onEvent = (e: JobEvent) => {
        if (json) {
          process.stdout.write(JSON.stringify(e) + '\n');
          return;
        }
        switch (e.event) {
          case 'snapshot':
            last = e.data as JobView;
            view.update(last.state, last.progress);
            break;
          case 'completed':
          case 'failed':
          case 'cancelled':
            // Said once, by the summary below.
            last = e.data as JobView;
            break;
          case 'progress':
            // Progress is reported by a running job: its snapshot may still say waiting or delayed.
            view.update('active', (e.data as { progress: number }).progress);
            break;
          case 'log':
            view.log((e.data as { line: string }).line);
            break;
          default:
        }
      };
      let ending: Ending | undefined;
      try {
        ending = await following(o.timeout, id, (signal) => followJobEvents(client, id, onEvent, { signal }), () => view.close());
      } finally {
        // Before anything else is said, on stdout or stderr.
        view.close();
      }
      if (ending === undefined) return;
      if (!json) {
        if (ending === 'removed') process.stdout.write(`${id}: removed before it ended (cancelled before it ran, or deleted)\n`);
        else if (last) process.stdout.write(jobSummary(last) + '\n');
      }
      process.exitCode = exitOf(ending);
    });

  program
    .command('job:logs')
    .description('a job\'s log lines (an update\'s command output), oldest first; --follow: and those to come, until the job ends')
    .argument('<id>', 'the job id')
    .option('--start <n>', 'index of the first line (default 0, the oldest)', intArg('--start'))
    .addOption(new Option('--limit <n>', 'at most this many lines').argParser(intArg('--limit', 1)).conflicts('follow'))
    .option('--follow', 'keep printing lines as they are written until the job ends: exit 0 when it completes, 4 when it fails')
    .option('--timeout <seconds>', 'with --follow: stop after this long (exit 5)', intArg('--timeout'))
    .action(async (id: string, o: { start?: number; limit?: number; follow?: boolean; timeout?: number }) => {
      const client = api();
      const json = g().json === true;
      const lines: string[] = [];
      let next = o.start ?? 0;
      let count = 0;
      const print = (index: number, line: string) => process.stdout.write((json ? JSON.stringify({ index, line }) : line) + '\n');
      // What is written already, a page (up to 1000 lines) at a time.
      for (;;) {
        const want = o.limit === undefined ? 1000 : Math.min(1000, o.limit - lines.length);
        if (want <= 0) break;
        const page = await client.call<LogPage>('GET', `${jobPath(id)}/logs?start=${next}&limit=${want}`);
        count = page.count;
        if (o.follow) page.lines.forEach((line, i) => print(next + i, line));
        else lines.push(...page.lines);
        next += page.lines.length;
        if (page.nextStart === null) break;
      }
      if (!o.follow) {
        if (json || lines.length) out(g(), { jobId: id, start: o.start ?? 0, count, lines }, () => lines.join('\n'));
        return;
      }
      // Then the lines to come, from the event stream, resuming after the last line printed.
      const ending = await following(o.timeout, id, (signal) =>
        followJobEvents(
          client,
          id,
          (e) => {
            if (e.event !== 'log') return;
            const { index, line } = e.data as { index: number; line: string };
            if (index < next) return;
            print(index, line);
            next = index + 1;
          },
          { lastEventId: String(next), signal },
        ),
      );
      if (ending !== undefined) process.exitCode = exitOf(ending);
    });
}

/**
 * Run a follow under an optional --timeout: the ending, or undefined when the
 * timeout came first (exit 5, said on stderr).
 */
async function following(timeoutSec: number | undefined, id: string, follow: (signal?: AbortSignal) => Promise<Ending>, beforeMessage: () => void = () => {}): Promise<Ending | undefined> {
  if (timeoutSec === undefined) return follow();
  const timeout = new CliError(`job ${id} had not ended after ${timeoutSec} s`, EXIT.TIMEOUT);
  const signal = AbortSignal.timeout(timeoutSec * 1000);
  try {
    return await follow(signal);
  } catch (err) {
    if (!signal.aborted) throw err;
    beforeMessage();
    process.stderr.write(`jobsctl: ${timeout.message}\n`);
    process.exitCode = EXIT.TIMEOUT;
    return undefined;
  }
}

/** job:submit, job:cancel, job:retry, job:remove. */
function addControlCommands(program: Command): void {
  const g = globalsOf(program);

  addEnqueueOptions(
    program
      .command('job:submit')
      .description('enqueue a job; prints its id (--wait: waits for it, exit 0 completed, 4 failed)')
      .argument('<type>', 'job type, e.g. scan:full')
      .addOption(dataOption()),
  ).action(async (type: string, o: EnqueueOptions & { data: unknown }) => {
    const client = api();
    const r = await client.call<{ jobId: string; state: string }>('POST', '/api/jobs', { type, data: o.data, ...jobOptionsOf(o) }, idempotencyHeaders(o));
    await enqueued(client, g(), r.jobId, r, o);
  });

  program
    .command('job:cancel')
    .description('stop a job: a waiting or delayed one is removed, a running one is stopped and fails as cancelled')
    .argument('<id>', 'the job id')
    .action(async (id: string) => {
      const r = await api().call<{ jobId: string; outcome: 'removed' | 'cancelled' | 'cancelling'; job: JobView | null }>('POST', `${jobPath(id)}/cancel`);
      const said = { removed: 'removed (it had not started)', cancelled: 'cancelled (it was running and has stopped)', cancelling: 'cancelling (still stopping: job:get it later)' }[r.outcome];
      out(g(), r, () => `${r.jobId}: ${said}`);
    });

  addWaitOptions(
    program
      .command('job:retry')
      .description('run a failed (or cancelled) job again, with a fresh set of attempts')
      .argument('<id>', 'the job id'),
  ).action(async (id: string, o: { wait?: boolean; timeout?: number }) => {
    const client = api();
    const r = await client.call<{ jobId: string; state: string }>('POST', `${jobPath(id)}/retry`);
    if (o.wait) return waitAndReport(client, g(), r.jobId, o.timeout);
    out(g(), r, () => `${r.jobId}: ${stateColor(r.state)}`);
  });

  program
    .command('job:remove')
    .description('delete a job that is not running, with its log and result')
    .argument('<id>', 'the job id')
    .action(async (id: string) => {
      await confirm(g(), `Remove job ${id}, its log and its result?`);
      const r = await api().call<{ jobId: string; removed: true }>('DELETE', jobPath(id));
      out(g(), r, () => `${r.jobId}: removed`);
    });
}

/** After an enqueue: print the answer (human: the job id alone, for `JOB=$(jobsctl ...)`), or --wait for the job. */
export async function enqueued(client: Api, globals: Globals, jobId: string, answer: unknown, o: { wait?: boolean; timeout?: number }): Promise<void> {
  if (o.wait) return waitAndReport(client, globals, jobId, o.timeout);
  out(globals, answer, () => jobId);
}
