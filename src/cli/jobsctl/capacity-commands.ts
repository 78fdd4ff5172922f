import type { Command } from 'commander';
import { api, CliError, EXIT } from './api.js';
import { globalsOf, intArg, queueOption, requireQueue } from './args.js';
import { out, table } from './output.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A length of time: 500ms, 90s, 1m, 2h, 1d; a bare number is in `bare` (seconds
 * for --ttl, as queue:set-limit's). Answers milliseconds.
 */
export const timeLengthArg =
  (name: string, bare: 's' | 'ms', minMs: number, maxMs: number) =>
  (v: string): number => {
    const m = /^(\d{1,9})(ms|s|m|h|d)?$/.exec(v);
    if (!m) throw new CliError(`${name} must be a length of time such as 30s, 1m, 2h or 1d, got "${v}"`, EXIT.USAGE);
    const ms = Number(m[1]) * UNIT_MS[m[2] ?? bare]!;
    if (ms < minMs || ms > maxMs) throw new CliError(`${name} must be between ${spell(minMs)} and ${spell(maxMs)}, got ${v}`, EXIT.USAGE);
    return ms;
  };

/** Milliseconds in the largest unit that divides them: 60000 -> 1m. */
export function spell(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) if (ms % UNIT_MS[unit]! === 0) return `${ms / UNIT_MS[unit]!}${unit}`;
  return `${ms}ms`;
}

type QueueConcurrency = {
  queue: string;
  configured: number;
  override: number | null;
  concurrency: number;
  followWithinMs: number;
  processes: Array<{ id: string; host: string; pid: number; concurrency: number }>;
  total: number;
};

type TenantLimit = {
  tenant: string;
  throttle: { max: number; perMs: number; queues: string[]; expiresAt: string | null; started: Record<string, number> } | null;
};

/** worker:scale and queue:throttle-org: capacity at run time, the operations guide's troubleshooting steps. */
export function addCapacityCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('worker:scale')
    .description('run --count jobs of a queue at once in every worker process, from now on (--reset: back to QUEUE_CONCURRENCY; neither: show it)')
    .addOption(queueOption())
    .option('--count <n>', 'jobs of the queue each worker process runs at once (1..1000)', intArg('--count', 1, 1000))
    .option('--reset', 'back to the configuration\'s concurrency')
    .action(async (o: { queue?: string; count?: number; reset?: boolean }) => {
      const queue = requireQueue(o.queue);
      if (o.count !== undefined && o.reset) throw new CliError('--count and --reset go one at a time', EXIT.USAGE);
      const path = `/api/queues/${queue}/concurrency`;
      const r =
        o.count !== undefined
          ? await api().call<QueueConcurrency>('PUT', path, { concurrency: o.count })
          : await api().call<QueueConcurrency>(o.reset ? 'DELETE' : 'GET', path);
      out(g(), r, () => {
        const source = r.override === null ? 'QUEUE_CONCURRENCY' : `set at run time; QUEUE_CONCURRENCY ${r.configured}`;
        const lagging = r.processes.filter((p) => p.concurrency !== r.concurrency).length;
        return [
          `${r.queue}: ${r.concurrency} job${r.concurrency === 1 ? '' : 's'} at once per worker process (${source})`,
          `${r.processes.length} worker process${r.processes.length === 1 ? '' : 'es'} online, ${r.total} at once in all` +
            (lagging > 0 ? `; ${lagging} still report${lagging === 1 ? 's' : ''} another concurrency (they follow within ${spell(r.followWithinMs)}, and report it a second later)` : ''),
          '',
          table(r.processes, [['host', 'HOST'], ['pid', 'PID'], ['concurrency', 'CONCURRENCY']]),
        ].join('\n');
      });
    });

  program
    .command('queue:throttle-org')
    .description('for a while, at most --max job starts of a tenant (organisation) per --per, in each queue or in --queue (--reset: end it)')
    .requiredOption('--org <tenant>', 'the tenant')
    .option('--max <n>', 'job starts allowed per --per', intArg('--max', 1, 1_000_000))
    .option('--per <time>', 'the window: 30s, 1m, 2h (default 1m)', timeLengthArg('--per', 's', 1000, UNIT_MS.d!))
    .option('--ttl <time>', 'how long the throttle lasts: 30m, 1h, 2d or seconds (default 1h)', timeLengthArg('--ttl', 's', 1000, 30 * UNIT_MS.d!))
    .addOption(queueOption())
    .option('--reset', 'end the tenant\'s throttle')
    .action(async (o: { org: string; max?: number; per?: number; ttl?: number; queue?: string; reset?: boolean }) => {
      const path = `/api/tenants/${encodeURIComponent(o.org)}/throttle`;
      if (o.reset) {
        if (o.max !== undefined) throw new CliError('--max and --reset go one at a time', EXIT.USAGE);
        const r = await api().call<TenantLimit>('DELETE', path);
        return out(g(), r, () => `${r.tenant}: not throttled (jobs it sent back start when their wait ends)`);
      }
      if (o.max === undefined) throw new CliError('--max is required (or --reset to end the throttle)', EXIT.USAGE);
      const r = await api().call<TenantLimit>('PUT', path, {
        max: o.max,
        ...(o.per !== undefined ? { perMs: o.per } : {}),
        ...(o.ttl !== undefined ? { ttlSeconds: Math.max(1, Math.round(o.ttl / 1000)) } : {}),
        ...(o.queue ? { queue: o.queue } : {}),
      });
      out(g(), r, () => {
        const t = r.throttle!;
        const where = o.queue ? `in ${o.queue}` : 'in each queue';
        return `${r.tenant}: at most ${t.max} job start${t.max === 1 ? '' : 's'} per ${spell(t.perMs)} ${where} until ${t.expiresAt ?? '-'} (started in the window: ${Object.entries(t.started).map(([q, n]) => `${q} ${n}`).join(', ')})`;
      });
    });
}
