import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/** Copies of one signal that arrive within this window are one request to stop (a process group gets each twice). */
const SAME_SIGNAL_MS = 2000;
/** How often the process checks that whoever started it is still there. */
const LAUNCHER_CHECK_MS = 1000;
/** How long the exit waits for the last log lines to be written. */
const FLUSH_MS = 500;
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * How `npm start` and `npm run worker` end. SIGTERM, SIGINT or SIGHUP run
 * `stop` (let active jobs finish, close everything) and exit 0; copies of a
 * signal within 2 s (Ctrl-C reaches the whole process group, and a launcher
 * may relay it again) count once, and a later one exits at once. A launcher
 * that dies without passing the signal on (a supervisor that stops `npm`
 * alone, a closed terminal) counts as a stop too: nothing runs on orphaned.
 * An uncaught error stops the same way and exits 1. A stop that takes longer
 * than `limitMs` is cut short (exit 1), so a stop can never hang.
 */
export function stopOnSignals(logger: Logger, limitMs: number, stop: () => Promise<void>): void {
  let firstAt = 0;
  // Logs go out asynchronously (src/logger.ts): let the last lines reach stdout before the process ends,
  // within half a second (a reader that stopped reading must not hold the exit).
  const exit = (code: number) => {
    setTimeout(() => process.exit(code), FLUSH_MS).unref();
    logger.flush(() => process.exit(code));
  };
  const begin = (why: Record<string, unknown>, code: 0 | 1) => {
    clearInterval(watch);
    firstAt = Date.now();
    if (code === 0) logger.info(why, 'stopping: no new work; letting active jobs finish');
    else logger.error(why, 'stopping after an error');
    setTimeout(() => {
      logger.error({ limitMs }, 'the stop took too long; exiting');
      exit(1);
    }, limitMs).unref();
    stop().then(
      () => exit(code),
      (err: Error) => {
        logger.error({ err: err.message }, 'shutdown failed');
        exit(1);
      },
    );
  };
  const launcher = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid !== launcher && firstAt === 0) begin({ launcher, reason: 'the process that started this one is gone' }, 0);
  }, LAUNCHER_CHECK_MS).unref();
  for (const signal of STOP_SIGNALS) {
    process.on(signal, () => {
      if (firstAt === 0) begin({ signal }, 0);
      else if (Date.now() - firstAt > SAME_SIGNAL_MS) {
        logger.warn({ signal }, 'second signal: exiting without waiting for active jobs (they run again elsewhere as stalled)');
        exit(1);
      }
    });
  }
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    process.on(event, (err: unknown) => {
      if (firstAt === 0) begin({ err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 1);
      else logger.error({ err: String(err) }, `${event} while stopping`);
    });
  }
}

/**
 * util-linux's setpriv, when the machine has it (Debian and most Linux
 * systems do): with --pdeathsig, the kernel signals a child when this process
 * dies, even by SIGKILL, so nothing this process started runs on orphaned.
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/**
 * The argv that runs `bin args` so that it gets SIGTERM when this process
 * dies, where the machine can do that; else `bin args` as they are.
 */
export function endingWithThisProcess(bin: string, args: readonly string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'TERM', '--', bin, ...args]] : [bin, [...args]];
}

/** Why `bin` cannot be run (ENOENT, EACCES), or undefined when it can: a path to an executable, or a name found on `searchPath`. */
export function unrunnable(bin: string, searchPath = process.env.PATH ?? ''): string | undefined {
  const why = (file: string) => {
    try {
      accessSync(file, constants.X_OK);
      return undefined;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'ENOENT';
    }
  };
  if (bin.includes('/')) return why(bin);
  const dirs = searchPath.split(':').filter((dir) => dir !== '');
  return dirs.some((dir) => why(path.join(dir, bin)) === undefined) ? undefined : 'ENOENT';
}
