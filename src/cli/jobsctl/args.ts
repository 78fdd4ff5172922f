import { createInterface } from 'node:readline/promises';
import { Option, type Command } from 'commander';
import { QUEUE_NAMES } from '../../jobs/index.js';
import { CliError, EXIT } from './api.js';
import type { Globals } from './output.js';

/** A destructive command goes ahead with --yes, or after a "yes" typed on a terminal; never silently from a script. */
export async function confirm(globals: Globals, question: string): Promise<void> {
  if (globals.yes) return;
  if (!process.stdin.isTTY) throw new CliError(`${question} Refusing without --yes (stdin is not a terminal).`, EXIT.USAGE);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = (await rl.question(`${question} Type "yes" to go on: `)).trim().toLowerCase();
  rl.close();
  if (answer !== 'yes' && answer !== 'y') throw new CliError('cancelled; nothing was changed', EXIT.USAGE);
}

// Shared option helpers: the same option reads the same way on every command that has it.
export const intArg =
  (name: string, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  (v: string) => {
    if (!/^\d+$/.test(v)) throw new CliError(`${name} must be a whole number, got "${v}"`, EXIT.USAGE);
    const n = Number(v);
    if (n < min || n > max) throw new CliError(`${name} must be between ${min} and ${max}, got ${v}`, EXIT.USAGE);
    return n;
  };

const AGO_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A point in time for --since/--until: ISO 8601 with a time zone
 * (2026-12-01T08:00:00Z), or a time ago: 90s, 30m, 6h, 7d. Answers ISO 8601.
 */
export const timeArg =
  (name: string, now = () => Date.now()) =>
  (v: string): string => {
    const ago = /^(\d{1,6})([smhd])$/.exec(v);
    if (ago) return new Date(now() - Number(ago[1]) * AGO_MS[ago[2]!]!).toISOString();
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v))) return new Date(Date.parse(v)).toISOString();
    throw new CliError(`${name} must be a time ago (30m, 6h, 7d) or ISO 8601 with a time zone (2026-12-01T08:00:00Z), got "${v}"`, EXIT.USAGE);
  };

/** A length of time: 90s, 30m, 6h, 1d (or plain milliseconds), within [minMs, maxMs]. Answers milliseconds. */
export const durationArg =
  (name: string, minMs: number, maxMs: number) =>
  (v: string): number => {
    const m = /^(\d{1,10})(ms|s|m|h|d)?$/.exec(v);
    if (!m) throw new CliError(`${name} must be a duration (30m, 6h, 24h, 7d) or milliseconds, got "${v}"`, EXIT.USAGE);
    const ms = Number(m[1]) * (m[2] === undefined || m[2] === 'ms' ? 1 : AGO_MS[m[2]]!);
    if (ms < minMs || ms > maxMs) throw new CliError(`${name} must be between ${minMs / 1000} s and ${maxMs / 86_400_000} days, got ${v}`, EXIT.USAGE);
    return ms;
  };

export function jsonArg(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch (err) {
    throw new CliError(`--data must be JSON, e.g. '{"serverId":"web-1"}': ${(err as Error).message}`, EXIT.USAGE);
  }
}

export function requireQueue(q: string | undefined): string {
  if (!q) throw new CliError('--queue is required (backup, scan or update)', EXIT.USAGE);
  return q;
}

export const queueOption = () => new Option('--queue <queue>', `${QUEUE_NAMES.slice(0, -1).join(', ')} or ${QUEUE_NAMES.at(-1)}`).choices(QUEUE_NAMES);
export const olderThanOption = () => new Option('--older-than <ms>', 'milliseconds (default 600000)').argParser(intArg('--older-than'));
export const dataOption = () => new Option('--data <json>', 'job data, e.g. \'{"serverId":"web-1"}\'').argParser(jsonArg).makeOptionMandatory();

/** The global options (--json, --yes) as they were parsed, for a command's action to read. */
export const globalsOf = (program: Command) => () => program.opts<Globals>();

/** What every enqueueing command takes: the job options, an Idempotency-Key, and --wait with its --timeout. */
export type EnqueueOptions = { priority?: number; delay?: number; attempts?: number; idempotencyKey?: string; wait?: boolean; timeout?: number };

export function addEnqueueOptions(cmd: Command, waits = true): Command {
  cmd
    .option('--priority <n>', '1 (critical) .. 5 (background)', intArg('--priority', 1, 5))
    .option('--delay <ms>', 'wait this long before running', intArg('--delay'))
    .option('--attempts <n>', 'attempts (default 3)', intArg('--attempts', 1, 10))
    .option('--idempotency-key <key>', 'repeat safely: the same key answers with the same job');
  if (waits) addWaitOptions(cmd);
  return cmd;
}

export function addWaitOptions(cmd: Command): Command {
  return cmd
    .option('--wait', 'wait until the job ends: exit 0 when it completed, 4 when it failed')
    .option('--timeout <seconds>', 'give up waiting after this long (exit 5; default 600)', intArg('--timeout'));
}

/** The `options` of an enqueue body, or nothing when none was given. */
export function jobOptionsOf(o: EnqueueOptions): { options?: { priority?: number; delay?: number; attempts?: number } } {
  const options = { ...(o.priority ? { priority: o.priority } : {}), ...(o.delay !== undefined ? { delay: o.delay } : {}), ...(o.attempts ? { attempts: o.attempts } : {}) };
  return Object.keys(options).length ? { options } : {};
}

export const idempotencyHeaders = (o: EnqueueOptions): Record<string, string> => (o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {});
