import type { Processor } from './run-job.js';
import { commandEnv, runCommand } from './lib/command.js';
import type { UpdateData, UpdateResult } from '../src/jobs/index.js';

/** Output lines copied into the job's log; the rest is summarised. */
const MAX_LOG_LINES = 1000;
const PROGRESS_LINE = /^PROGRESS\s+(\d{1,3})\s*$/;

/**
 * update:server — runs the server's declared command with its timeout. Exit 0
 * completes; anything else fails the attempt with the exit code and the last
 * lines of output. A `PROGRESS <n>` line (0..100) moves progress within 40..90.
 */
export const processUpdate: Processor<UpdateData, UpdateResult> = async ({ job, server, recordId, progress, log, jobLog, signal, timeoutSec, deps }) => {
  const spec = server.update!;
  await deps.records.start('update', recordId, { serverId: server.id, jobId: job.id!, tenant: server.tenant });
  progress.milestone(30);

  const argv = deps.inventory.resolveCommand(spec.command);
  progress.milestone(40);
  jobLog.step(`running the update command (timeout ${timeoutSec}s)`);
  const started = Date.now();
  let logged = 0;
  let recorded: Promise<unknown> = Promise.resolve();
  const outcome = await runCommand(
    argv,
    timeoutSec,
    (line) => {
      const m = PROGRESS_LINE.exec(line);
      if (m) progress.band(40, 90, Number(m[1]) / 100);
      if (logged < MAX_LOG_LINES) jobLog.line(line);
      else if (logged === MAX_LOG_LINES) jobLog.step(`more than ${MAX_LOG_LINES} lines of output: the rest is not kept in this log`);
      logged += 1;
    },
    {
      abort: signal,
      env: commandEnv(spec.env),
      // Kept in Redis while it runs: if this process dies, the next attempt ends what it left (or waits for it).
      onStart: (pgid) => {
        recorded = deps.commands?.started(server.id, job.id!, pgid, (timeoutSec + 60) * 1000).catch(() => {}) ?? recorded;
      },
    },
  ).finally(async () => {
    await recorded;
    await deps.commands?.ended(server.id, job.id!).catch(() => {});
  });
  const durationMs = Date.now() - started;
  const output = outcome.tail.join('\n');
  if (outcome.cancelled) throw new Error(`update command stopped: the job was cancelled`);
  jobLog.step(`command ended after ${durationMs} ms: ${outcome.timedOut ? 'timed out' : outcome.exitCode === null ? `killed by ${outcome.signal}` : `exit code ${outcome.exitCode}`}`);
  if (outcome.timedOut) {
    throw new Error(`update command timed out after ${timeoutSec}s and was killed; last output:\n${output}`);
  }
  if (outcome.exitCode !== 0) {
    const how = outcome.exitCode === null ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode}`;
    throw new Error(`update command ${how}; last output:\n${output}`);
  }
  log.info({ durationMs, lines: outcome.lines }, 'update command succeeded');
  progress.milestone(90);
  const result: UpdateResult = { updateId: recordId, serverId: server.id, exitCode: 0, durationMs, outputLines: outcome.lines, outputTail: outcome.tail };
  await deps.records.finish('update', recordId, 'completed', result);
  return result;
};
