import type { Command } from 'commander';
import { QUEUE_NAMES } from '../../jobs/index.js';
import { api } from './api.js';
import { confirm, globalsOf, intArg, olderThanOption, queueOption, requireQueue } from './args.js';
import { out, paint, table } from './output.js';

type Finished = { completed: number; failed: number; cancelled: number };
type Throughput = { queue: string; windowMin: number; from: string; to: string; total: Finished; perMinute: Finished; buckets: Array<{ minute: string } & Finished> };
type SlowJob = { jobId: string; type: string; state: string; serverId: string | null; tenant: string; durationMs: number; startedAt: string; finishedAt: string };

/** 850 ms, 12.4 s, 3m 05s, 2h 10m: a run time a person reads at a glance. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** queue:remove-stuck, queue:throughput, queue:slow-jobs: the operations guide's "Clear Stuck Jobs" and "Queue Backlog Growing". */
export function addQueueOpsCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('queue:remove-stuck')
    .description('stop the stuck jobs (active longer than --older-than, default 10 minutes) and remove them entirely; queue:unstick keeps them to retry')
    .addOption(queueOption())
    .addOption(olderThanOption())
    .action(async (o: { queue?: string; olderThan?: number }) => {
      const queue = requireQueue(o.queue);
      const olderThanMs = o.olderThan ?? 600_000;
      await confirm(g(), `Stop and remove the jobs of ${queue} active for more than ${olderThanMs} ms? They are lost.`);
      const r = await api().call<{ removed: number; jobs: string[] }>('POST', `/api/queues/${queue}/remove-stuck`, { olderThanMs });
      out(g(), r, () => `${r.removed} stuck jobs removed from ${queue}${r.jobs.length ? `: ${r.jobs.join(', ')}` : ''}`);
    });

  program
    .command('queue:throughput')
    .description('jobs finished per minute over the last --window minutes, per queue; with --queue, minute by minute too')
    .addOption(queueOption())
    .option('--window <minutes>', 'minutes, the current one included (1..1440, default 60)', intArg('--window', 1, 1440))
    .action(async (o: { queue?: string; window?: number }) => {
      const windowMin = o.window ?? 60;
      const list: Throughput[] = [];
      for (const q of o.queue ? [o.queue] : QUEUE_NAMES) list.push(await api().call<Throughput>('GET', `/api/queues/${q}/throughput?windowMin=${windowMin}`));
      out(g(), o.queue ? list[0] : list, () => {
        const summary = table(
          list.map((t) => ({ queue: t.queue, ...t.total, rate: t.perMinute.completed, finished: Math.round((t.perMinute.completed + t.perMinute.failed + t.perMinute.cancelled) * 100) / 100 })),
          [['queue', 'QUEUE'], ['completed', 'COMPLETED'], ['failed', 'FAILED'], ['cancelled', 'CANCELLED'], ['rate', 'COMPLETED/MIN'], ['finished', 'FINISHED/MIN']],
        );
        const head = paint('dim', `the last ${windowMin} minute${windowMin === 1 ? '' : 's'}, from ${list[0]!.from}`);
        if (!o.queue) return [head, summary].join('\n');
        const busy = list[0]!.buckets.filter((b) => b.completed + b.failed + b.cancelled > 0);
        return [head, summary, '', table(busy, [['minute', 'MINUTE'], ['completed', 'COMPLETED'], ['failed', 'FAILED'], ['cancelled', 'CANCELLED']])].join('\n');
      });
    });

  program
    .command('queue:slow-jobs')
    .description('the slowest of the latest 500 finished jobs of each queue (or of --queue), longest run first')
    .addOption(queueOption())
    .option('--limit <n>', 'how many (1..100, default 10)', intArg('--limit', 1, 100))
    .action(async (o: { queue?: string; limit?: number }) => {
      const limit = o.limit ?? 10;
      const jobs: Array<SlowJob & { queue: string }> = [];
      for (const q of o.queue ? [o.queue] : QUEUE_NAMES) {
        const r = await api().call<{ jobs: SlowJob[] }>('GET', `/api/queues/${q}/slow-jobs?limit=${limit}`);
        jobs.push(...r.jobs.map((j) => ({ ...j, queue: q })));
      }
      const slowest = jobs.sort((a, b) => b.durationMs - a.durationMs).slice(0, limit);
      out(g(), slowest, () =>
        table(
          slowest.map((j) => ({ ...j, duration: formatDuration(j.durationMs) })),
          [['jobId', 'JOB'], ['type', 'TYPE'], ['state', 'STATE'], ['serverId', 'SERVER'], ['tenant', 'TENANT'], ['duration', 'DURATION'], ['finishedAt', 'FINISHED AT']],
        ),
      );
    });
}
