import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Processor } from '../src/job-runner.js';
import type { UpdateData } from '../src/job-types.js';

/** How many of the last output lines a failure reason quotes. */
const TAIL_LINES = 10;
/** Output lines copied into the job's log; the rest is summarised. */
const MAX_LOG_LINES = 1000;
const PROGRESS_LINE = /^PROGRESS\s+(\d{1,3})\s*$/;

export type CommandOutcome = { exitCode: number | null; signal: NodeJS.Signals | null; timedOut: boolean; tail: string[]; lines: number };

/**
 * Run argv (never through a shell) in its own process group; at `timeoutSec`
 * kill the whole group. Each output line goes to `onLine`.
 */
export function runCommand(argv: string[], timeoutSec: number, onLine: (line: string) => void): Promise<CommandOutcome> {
  const [bin, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(bin!, args, { shell: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    const tail: string[] = [];
    let lines = 0;
    let timedOut = false;
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
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), 2000).unref();
    }, timeoutSec * 1000);
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin}: ${err.code ?? err.message}`));
    });
    child.once('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, timedOut, tail, lines });
    });
  });
}

/**
 * update:server — runs the server's declared command with its timeout. Exit 0
 * completes; anything else fails the attempt with the exit code and the last
 * lines of output. A `PROGRESS <n>` line (0..100) moves progress within 40..90.
 */
export const processUpdate: Processor<UpdateData> = async ({ job, server, recordId, progress, log, deps }) => {
  const spec = server.update!;
  await deps.records.start('update', recordId, { serverId: server.id, jobId: job.id!, tenant: server.tenant });
  progress.milestone(30);

  const argv = deps.inventory.resolveCommand(spec.command);
  progress.milestone(40);
  const started = Date.now();
  let logged = 0;
  let logWrites: Promise<unknown> = Promise.resolve();
  const outcome = await runCommand(argv, spec.timeoutSec, (line) => {
    const m = PROGRESS_LINE.exec(line);
    if (m) progress.band(40, 90, Number(m[1]) / 100);
    if (logged < MAX_LOG_LINES) {
      logged += 1;
      logWrites = logWrites.then(() => job.log(line)).catch(() => {});
    }
  });
  await logWrites;
  const durationMs = Date.now() - started;
  const output = outcome.tail.join('\n');
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
