import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Processor } from './run-job.js';
import type { UpdateData } from '../src/jobs/index.js';

/** How many of the last output lines a failure reason quotes. */
const TAIL_LINES = 10;
/** Output lines copied into the job's log; the rest is summarised. */
const MAX_LOG_LINES = 1000;
const PROGRESS_LINE = /^PROGRESS\s+(\d{1,3})\s*$/;

export type CommandOutcome = {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  tail: string[];
  lines: number;
};

/** After SIGTERM, a process group gets this long to exit before SIGKILL. */
const KILL_GRACE_MS = 2000;

/**
 * Run argv (never through a shell) in its own process group; at `timeoutSec`,
 * or when `abort` fires, kill the whole group (the command and everything it
 * started): SIGTERM, then SIGKILL after KILL_GRACE_MS. Each output line goes
 * to `onLine`.
 */
export function runCommand(
  argv: string[],
  timeoutSec: number,
  onLine: (line: string) => void,
  abort?: AbortSignal,
): Promise<CommandOutcome> {
  const [bin, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(bin!, args, { shell: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    const tail: string[] = [];
    let lines = 0;
    let timedOut = false;
    let cancelled = false;
    const take = (line: string) => {
      lines += 1;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      onLine(line);
    };
    createInterface({ input: child.stdout! }).on('line', take);
    createInterface({ input: child.stderr! }).on('line', take);
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    };
    const stop = () => {
      killGroup('SIGTERM');
      // The group, not the child: a grandchild that ignores SIGTERM still goes.
      setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutSec * 1000);
    const onAbort = () => {
      cancelled = true;
      stop();
    };
    abort?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', onAbort);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      done();
      reject(new Error(`cannot run ${bin}: ${err.code ?? err.message}`));
    });
    child.once('close', (exitCode, signal) => {
      done();
      // The command is gone; make sure nothing it left behind in its group lives on.
      if (timedOut || cancelled) killGroup('SIGKILL');
      resolve({ exitCode, signal, timedOut, cancelled, tail, lines });
    });
    if (abort?.aborted) onAbort();
  });
}

/**
 * update:server — runs the server's declared command with its timeout. Exit 0
 * completes; anything else fails the attempt with the exit code and the last
 * lines of output. A `PROGRESS <n>` line (0..100) moves progress within 40..90.
 */
export const processUpdate: Processor<UpdateData> = async ({ job, server, recordId, progress, log, jobLog, signal, deps }) => {
  const spec = server.update!;
  await deps.records.start('update', recordId, { serverId: server.id, jobId: job.id!, tenant: server.tenant });
  progress.milestone(30);

  const argv = deps.inventory.resolveCommand(spec.command);
  progress.milestone(40);
  jobLog.step(`running the update command (timeout ${spec.timeoutSec}s)`);
  const started = Date.now();
  let logged = 0;
  const outcome = await runCommand(
    argv,
    spec.timeoutSec,
    (line) => {
      const m = PROGRESS_LINE.exec(line);
      if (m) progress.band(40, 90, Number(m[1]) / 100);
      if (logged < MAX_LOG_LINES) jobLog.line(line);
      else if (logged === MAX_LOG_LINES) jobLog.step(`more than ${MAX_LOG_LINES} lines of output: the rest is not kept in this log`);
      logged += 1;
    },
    signal,
  );
  const durationMs = Date.now() - started;
  const output = outcome.tail.join('\n');
  if (outcome.cancelled) throw new Error(`update command stopped: the job was cancelled`);
  jobLog.step(`command ended after ${durationMs} ms: ${outcome.timedOut ? 'timed out' : outcome.exitCode === null ? `killed by ${outcome.signal}` : `exit code ${outcome.exitCode}`}`);
  if (outcome.timedOut) {
    throw new Error(`update command timed out after ${spec.timeoutSec}s and was killed; last output:\n${output}`);
  }
  if (outcome.exitCode !== 0) {
    const how = outcome.exitCode === null ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
    throw new Error(`update command ${how}; last output:\n${output}`);
  }
  log.info({ durationMs, lines: outcome.lines }, 'update command succeeded');
  progress.milestone(90);
  const result = { updateId: recordId, serverId: server.id, exitCode: 0, durationMs, outputLines: outcome.lines, outputTail: outcome.tail };
  await deps.records.finish('update', recordId, 'completed', result);
  return result;
};
