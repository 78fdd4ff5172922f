import { Command, CommanderError, Option } from 'commander';
import { QUEUE_NAMES } from '../jobs/index.js';
import { api, CliError, EXIT, type JobView } from './jobsctl/api.js';
import { confirm, dataOption, durationArg, globalsOf, intArg, olderThanOption, queueOption, requireQueue } from './jobsctl/args.js';
import { addJobCommands } from './jobsctl/job-commands.js';
import { addExplainCommand } from './jobsctl/job-explain.js';
import { addCapacityCommands } from './jobsctl/capacity-commands.js';
import { out, paint, stateColor, table } from './jobsctl/output.js';
import { addQueueOpsCommands, formatDuration } from './jobsctl/queue-ops-commands.js';
import { addServerCommands } from './jobsctl/server-commands.js';

/**
 * jobsctl: the operator's terminal for the Jobs API. It talks to the REST API
 * (JOBS_API_URL, JOBS_API_TOKEN) and nothing else. Tables on a terminal,
 * `--json` for scripts; exit codes a script can branch on (EXIT, the README's
 * table shared with the Python `jobsapi` command). The queue, worker and
 * schedule commands are here; the job and server commands in jobsctl/.
 */
export { EXIT };

type QueueStatus = { queue: string; paused: boolean; workers: number; concurrency: number; rateLimit: { max: number; duration: number } | null; counts: Record<string, number> };

const statusRows = (list: QueueStatus[]) =>
  list.map((q) => ({ queue: q.queue, state: q.paused ? 'paused' : 'running', workers: q.workers, ...q.counts, limit: q.rateLimit ? `${q.rateLimit.max}/${q.rateLimit.duration}ms` : null }));

/** jobsctl's commands, in the order `--help` lists them. */
export function buildProgram(): Command {
  const program = rootCommand();
  addQueueStateCommands(program);
  addFailureCommands(program);
  addStuckAndDrainCommands(program);
  addQueueOpsCommands(program);
  addTenantLimitCommands(program);
  addWorkerCommands(program);
  addCapacityCommands(program);
  addScheduleCommands(program);
  addJobCommands(program);
  addExplainCommand(program);
  addServerCommands(program);
  return program;
}

/** The program itself: global options, help text, and how errors are reported. */
function rootCommand(): Command {
  const program = new Command('jobsctl')
    .description('Operate the Jobs API from a terminal (JOBS_API_URL, JOBS_API_TOKEN).')
    .option('--json', 'print JSON for scripts instead of tables')
    .option('--yes', 'do destructive commands without asking')
    .showHelpAfterError('(jobsctl --help lists the commands and options)')
    .addHelpText(
      'after',
      `\nExit codes (the same for the Python jobsapi command): 0 ok, 1 unexpected error, 2 usage, 3 found (queue:stuck),\n` +
        `4 the job failed or was cancelled (job:watch, job:logs --follow, --wait), 5 the wait timed out,\n` +
        `6 refused by the API (400, 404, 409, 422, 429), 7 not authorized (401, 403), 8 API unreachable or unavailable (5xx).`,
    );
  // Before any subcommand is added: they inherit these.
  program.exitOverride();
  program.configureOutput({ outputError: (str, write) => write(paint('red', str)) });
  return program;
}

/** queue:status, queue:metrics, queue:pause, queue:resume. */
function addQueueStateCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('queue:status')
    .description('counts, paused and workers online, per queue')
    .addOption(queueOption())
    .action(async (o: { queue?: string }) => {
      const list = o.queue ? [await api().call<QueueStatus>('GET', `/api/queues/${o.queue}`)] : await api().call<QueueStatus[]>('GET', '/api/queues');
      out(g(), o.queue ? list[0] : list, () =>
        table(statusRows(list), [['queue', 'QUEUE'], ['state', 'STATE'], ['workers', 'WORKERS'], ['waiting', 'WAITING'], ['active', 'ACTIVE'], ['delayed', 'DELAYED'], ['completed', 'COMPLETED'], ['failed', 'FAILED'], ['limit', 'RATE LIMIT']]),
      );
    });

  program
    .command('queue:metrics')
    .description('per-queue counts with the health verdict')
    .addOption(queueOption())
    .action(async (o: { queue?: string }) => {
      const data = await api().call<Record<string, unknown> & { health: { status: string; message: string } }>('GET', '/api/metrics/queues');
      const { health, ...queues } = data;
      const pick = (o.queue ? { [o.queue]: queues[o.queue] } : queues) as Record<string, Record<string, number>>;
      out(g(), { ...pick, health }, () =>
        [
          table(
            Object.entries(pick).map(([queue, m]) => ({ queue, ...m })),
            [['queue', 'QUEUE'], ['waiting', 'WAITING'], ['active', 'ACTIVE'], ['delayed', 'DELAYED'], ['completed', 'COMPLETED'], ['failed', 'FAILED'], ['total', 'TOTAL']],
          ),
          '',
          `health: ${stateColor(health.status)} — ${health.message}`,
        ].join('\n'),
      );
    });

  type Verdict = {
    status: string;
    reasons: string[];
    waiting: number;
    activePercent: number | null;
    failureRatePercent: number | null;
    averageWaitSec: number | null;
  };
  program
    .command('queue:health')
    .description('each queue by the operations guide\'s indicators (active %, waiting, failures, wait time); exits 3 when one is not healthy')
    .addOption(queueOption())
    .action(async (o: { queue?: string }) => {
      const { health } = await api().call<{ health: { status: string; message: string; queues: Record<string, Verdict> } }>('GET', '/api/metrics/queues');
      const pick = o.queue ? { [o.queue]: health.queues[o.queue]! } : health.queues;
      const percent = (v: number | null) => (v === null ? null : `${v}%`);
      out(g(), o.queue ? pick[o.queue] : health, () =>
        [
          table(
            Object.entries(pick).map(([queue, v]) => ({
              queue,
              status: stateColor(v.status),
              active: percent(v.activePercent),
              waiting: v.waiting,
              failures: percent(v.failureRatePercent),
              wait: v.averageWaitSec === null ? null : `${v.averageWaitSec} s`,
            })),
            [['queue', 'QUEUE'], ['status', 'STATUS'], ['active', 'ACTIVE % OF MAX'], ['waiting', 'WAITING'], ['failures', 'FAILED (1 H)'], ['wait', 'AVG WAIT']],
          ),
          ...Object.values(pick).flatMap((v) => v.reasons.map((r) => `  ${r}`)),
        ].join('\n'),
      );
      if (Object.values(pick).some((v) => v.status !== 'healthy')) process.exitCode = EXIT.FOUND;
    });

  for (const action of ['pause', 'resume'] as const) {
    program
      .command(`queue:${action}`)
      .description(action === 'pause' ? 'stop workers taking new jobs from a queue (running jobs finish)' : 'let workers take jobs from a paused queue again')
      .addOption(queueOption())
      .action(async (o: { queue?: string }) => {
        const q = await api().call<QueueStatus>('POST', `/api/queues/${requireQueue(o.queue)}/${action}`);
        out(g(), q, () => `${q.queue}: ${q.paused ? stateColor('paused') : 'running'} (${q.counts.waiting} waiting, ${q.counts.active} active)`);
      });
  }
}

/** queue:retry, queue:failures, queue:error-summary: what failed, and trying it again. */
function addFailureCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('queue:retry')
    .description('retry one failed job (--job), or the failed jobs of a queue (all, or those whose reason contains --error)')
    .addOption(queueOption())
    .option('--job <id>', 'one job')
    .option('--error <text>', 'only failures whose reason contains this (case-insensitive)')
    .option('--limit <n>', 'at most this many (default 1000)', intArg('--limit'))
    .option('--dry-run', 'only count')
    .action(async (o: { queue?: string; job?: string; error?: string; limit?: number; dryRun?: boolean }) => {
      if (o.job) {
        const r = await api().call<{ jobId: string; state: string }>('POST', `/api/jobs/${encodeURIComponent(o.job)}/retry`);
        return out(g(), r, () => `${r.jobId}: ${stateColor(r.state)}`);
      }
      const queue = requireQueue(o.queue);
      if (!o.dryRun) await confirm(g(), `Retry the failed jobs of ${queue}${o.error ? ` whose reason contains "${o.error}"` : ''}?`);
      const r = await api().call<{ matched: number; retried: number; jobs: string[] }>('POST', `/api/queues/${queue}/retry`, {
        ...(o.error ? { errorContains: o.error } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
        dryRun: o.dryRun === true,
      });
      out(g(), r, () => (o.dryRun ? `${r.matched} failed jobs match; nothing retried (dry run)` : `${r.matched} matched, ${r.retried} retried`));
    });

  program
    .command('queue:failures')
    .description('recent jobs that failed for good (dead letters), newest first')
    .addOption(queueOption())
    .option('--error <text>', 'only failures whose reason contains this')
    .option('--error-type <type>', 'only failures of this error type (as queue:error-summary prints it)')
    .option('--limit <n>', 'how many (default 20, at most 100)', intArg('--limit'))
    .action(async (o: { queue?: string; error?: string; errorType?: string; limit?: number }) => {
      const q = new URLSearchParams({
        limit: String(o.limit ?? 20),
        ...(o.queue ? { queue: o.queue } : {}),
        ...(o.error ? { errorContains: o.error } : {}),
        ...(o.errorType ? { errorType: o.errorType } : {}),
      });
      const r = await api().call<{ jobs: Array<JobView & { errorType: string }> }>('GET', `/api/dead-letters?${q}`);
      out(g(), r.jobs, () =>
        table(
          r.jobs.map((j) => ({ ...j, reason: (j.failedReason ?? '').split('\n')[0]!.slice(0, 80) })),
          [['id', 'JOB'], ['type', 'TYPE'], ['tenant', 'TENANT'], ['attempts', 'ATTEMPTS'], ['finishedAt', 'FAILED AT'], ['reason', 'REASON']],
        ),
      );
    });

  program
    .command('queue:error-summary')
    .description('failures grouped by error type, most frequent first')
    .addOption(queueOption())
    .action(async (o: { queue?: string }) => {
      const r = await api().call<{ groups: Array<{ errorType: string; count: number; queues: string[]; newest: { jobId: string; finishedAt: string } }> }>(
        'GET',
        `/api/dead-letters/errors${o.queue ? `?queue=${o.queue}` : ''}`,
      );
      out(g(), r, () =>
        table(
          r.groups.map((x) => ({ count: x.count, queues: x.queues.join(','), error: x.errorType, newest: x.newest.jobId, at: x.newest.finishedAt })),
          [['count', 'COUNT'], ['queues', 'QUEUES'], ['error', 'ERROR'], ['newest', 'NEWEST'], ['at', 'AT']],
        ),
      );
    });
}

/** queue:stuck, queue:unstick, queue:drain: jobs that hang, and jobs nobody wants any more. */
function addStuckAndDrainCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('queue:stuck')
    .description('jobs active for longer than --older-than (default 10 minutes); exits 3 when there are any')
    .addOption(queueOption())
    .addOption(olderThanOption())
    .action(async (o: { queue?: string; olderThan?: number }) => {
      const queues = o.queue ? [o.queue] : QUEUE_NAMES;
      const jobs: JobView[] = [];
      for (const q of queues) {
        const r = await api().call<{ jobs: JobView[] }>('GET', `/api/queues/${q}/stuck?olderThanMs=${o.olderThan ?? 600_000}`);
        jobs.push(...r.jobs);
      }
      out(g(), jobs, () => table(jobs.map((j) => ({ ...j, since: j.processedAt })), [['id', 'JOB'], ['queue', 'QUEUE'], ['type', 'TYPE'], ['tenant', 'TENANT'], ['progress', 'PROGRESS'], ['since', 'ACTIVE SINCE']]));
      if (jobs.length > 0) process.exitCode = EXIT.FOUND;
    });

  program
    .command('queue:unstick')
    .description('move stuck jobs to failed, so they can be retried')
    .addOption(queueOption())
    .addOption(olderThanOption())
    .action(async (o: { queue?: string; olderThan?: number }) => {
      const queue = requireQueue(o.queue);
      await confirm(g(), `Move the jobs of ${queue} active for more than ${o.olderThan ?? 600_000} ms to failed?`);
      const r = await api().call<{ moved: number; jobs: string[] }>('POST', `/api/queues/${queue}/unstick`, { olderThanMs: o.olderThan ?? 600_000 });
      out(g(), r, () => `${r.moved} jobs moved to failed${r.jobs.length ? `: ${r.jobs.join(', ')}` : ''}`);
    });

  program
    .command('queue:drain')
    .description('remove the waiting jobs of a queue (--remove, the default; --delayed: the delayed ones too), or keep them and move them to delayed (--delay=24h)')
    .addOption(queueOption())
    .option('--remove', 'remove the waiting jobs: they are lost (what queue:drain does without --delay)')
    .option('--delayed', 'also remove delayed jobs')
    .addOption(
      new Option('--delay <duration>', 'keep the waiting jobs: move them to delayed for this long (30m, 6h, 24h; 1s..30d)')
        .argParser(durationArg('--delay', 1000, 30 * 86_400_000))
        .conflicts(['remove', 'delayed']),
    )
    .action(async (o: { queue?: string; delayed?: boolean; delay?: number }) => {
      const queue = requireQueue(o.queue);
      type Drained = { removed: { waiting: number; delayed: number }; movedToDelayed?: number; delayedUntil?: string };
      if (o.delay !== undefined) {
        await confirm(g(), `Move every waiting job of ${queue} to delayed for ${formatDuration(o.delay)}? They run when due.`);
        const r = await api().call<Drained>('POST', `/api/queues/${queue}/drain`, { delayMs: o.delay });
        return out(g(), r, () => `moved ${r.movedToDelayed} waiting jobs of ${queue} to delayed, due at ${r.delayedUntil}`);
      }
      await confirm(g(), `Remove every waiting${o.delayed ? ' and delayed' : ''} job of ${queue}? They are lost.`);
      const r = await api().call<Drained>('POST', `/api/queues/${queue}/drain`, { delayed: o.delayed === true });
      out(g(), r, () => `removed ${r.removed.waiting} waiting and ${r.removed.delayed} delayed jobs from ${queue}`);
    });
}

/** queue:org-stats, queue:set-limit, queue:reset-limit: per-tenant usage and caps. */
function addTenantLimitCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('queue:org-stats')
    .description('per tenant (organisation): jobs in each state per queue, and its cap')
    .option('--org <tenant>', 'only this tenant')
    .action(async (o: { org?: string }) => {
      const r = await api().call<Array<{ tenant: string; queues: Record<string, Record<string, number>>; limit: { effective: Record<string, number>; override: number | null } }>>(
        'GET',
        `/api/tenants/stats${o.org ? `?tenant=${encodeURIComponent(o.org)}` : ''}`,
      );
      out(g(), r, () =>
        table(
          r.flatMap((t) => Object.entries(t.queues).map(([queue, c]) => ({ tenant: t.tenant, queue, ...c, cap: t.limit.effective[queue], override: t.limit.override }))),
          [['tenant', 'TENANT'], ['queue', 'QUEUE'], ['waiting', 'WAITING'], ['active', 'ACTIVE'], ['delayed', 'DELAYED'], ['completed', 'COMPLETED'], ['failed', 'FAILED'], ['cap', 'CAP'], ['override', 'OVERRIDE']],
        ),
      );
    });

  program
    .command('queue:set-limit')
    .description('override a tenant\'s cap of active jobs per queue, for a while')
    .requiredOption('--org <tenant>', 'the tenant')
    .requiredOption('--max <n>', 'active jobs per queue', intArg('--max'))
    .option('--ttl <seconds>', 'how long the override lasts (default 3600)', intArg('--ttl'))
    .action(async (o: { org: string; max: number; ttl?: number }) => {
      const r = await api().call<{ tenant: string; override: number; overrideExpiresAt: string; effective: Record<string, number> }>(
        'PUT',
        `/api/tenants/${encodeURIComponent(o.org)}/limits`,
        { maxActive: o.max, ...(o.ttl ? { ttlSeconds: o.ttl } : {}) },
      );
      out(g(), r, () => `${r.tenant}: at most ${r.override} active per queue until ${r.overrideExpiresAt} (in force: ${Object.entries(r.effective).map(([q, n]) => `${q} ${n}`).join(', ')})`);
    });

  program
    .command('queue:reset-limit')
    .description('back to TENANT_MAX_ACTIVE for a tenant')
    .requiredOption('--org <tenant>', 'the tenant')
    .action(async (o: { org: string }) => {
      const r = await api().call<{ tenant: string; default: number }>('DELETE', `/api/tenants/${encodeURIComponent(o.org)}/limits`);
      out(g(), r, () => `${r.tenant}: back to the default of ${r.default}`);
    });
}

/** worker:status. */
function addWorkerCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('worker:status')
    .description('worker processes online per queue, and what they did since they started')
    .action(async () => {
      const r = await api().call<{ queues: Record<string, Record<string, number>>; processes: Array<{ id: string; host: string; pid: number; startedAt: string; lastSeen: string }> }>('GET', '/api/workers');
      out(g(), r, () =>
        [
          table(Object.entries(r.queues).map(([queue, q]) => ({ queue, ...q })), [['queue', 'QUEUE'], ['online', 'ONLINE'], ['concurrency', 'CONCURRENCY'], ['active', 'ACTIVE'], ['processed', 'PROCESSED'], ['completed', 'COMPLETED'], ['failed', 'FAILED'], ['retried', 'RETRIED']]),
          '',
          table(r.processes, [['host', 'HOST'], ['pid', 'PID'], ['startedAt', 'STARTED'], ['lastSeen', 'LAST SEEN']]),
        ].join('\n'),
      );
    });
}

/** schedule:list, schedule:add, schedule:remove. */
function addScheduleCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('schedule:list')
    .description('cron schedules with their next run')
    .action(async () => {
      const r = await api().call<Array<{ id: string; tenant: string; type: string; cron: string; tz: string | null; runs: number; next: string[]; data: { serverId?: string } }>>('GET', '/api/schedules');
      out(g(), r, () => table(r.map((s) => ({ ...s, server: s.data?.serverId, next: s.next[0] })), [['id', 'ID'], ['tenant', 'TENANT'], ['type', 'TYPE'], ['server', 'SERVER'], ['cron', 'CRON'], ['tz', 'TZ'], ['runs', 'RUNS'], ['next', 'NEXT RUN']]));
    });

  program
    .command('schedule:add')
    .description('create or replace a cron schedule')
    .requiredOption('--id <id>', 'the schedule\'s name')
    .requiredOption('--type <type>', 'job type, e.g. backup:scheduled')
    .addOption(dataOption())
    .requiredOption('--cron <pattern>', 'e.g. "0 2 * * *"')
    .option('--tz <zone>', 'IANA time zone, e.g. Europe/Paris')
    .action(async (o: { id: string; type: string; data: unknown; cron: string; tz?: string }) => {
      const r = await api().call<{ id: string; next: string[] }>('POST', '/api/schedules', { id: o.id, type: o.type, data: o.data, cron: o.cron, ...(o.tz ? { tz: o.tz } : {}) });
      out(g(), r, () => `schedule ${r.id}: next runs ${r.next.slice(0, 3).join(', ')}`);
    });

  program
    .command('schedule:remove')
    .description('delete a cron schedule')
    .requiredOption('--id <id>', 'the schedule\'s name')
    .action(async (o: { id: string }) => {
      await confirm(g(), `Delete schedule ${o.id}?`);
      const r = await api().call('DELETE', `/api/schedules/${encodeURIComponent(o.id)}`);
      out(g(), r, () => `schedule ${o.id} deleted`);
    });
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? EXIT.OK : EXIT.USAGE;
    }
    if (err instanceof CliError) {
      process.stderr.write(`jobsctl: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`jobsctl: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.ERROR;
  }
}
