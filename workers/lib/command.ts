import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { endingWithThisProcess, unrunnable } from '../../src/lifecycle.js';

/** How many of the last output lines an outcome keeps (a failure reason quotes them). */
const TAIL_LINES = 10;

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
 * What a command starts with: a search path, a home and a language from this
 * process (or sane defaults), and what its inventory entry declares; never
 * the rest of this process's environment, which holds its secrets
 * (JWT_SECRET, BACKUP_ENCRYPTION_KEY, ADMIN_PASSWORD, REDIS_URL...).
 */
export function commandEnv(declared: Readonly<Record<string, string>> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: process.env.HOME ?? '/',
    LANG: process.env.LANG ?? 'C.UTF-8',
    ...declared,
  };
}

export type CommandOptions = {
  /** Stop the command (its whole group) when this fires. */
  abort?: AbortSignal | undefined;
  /** Its whole environment (commandEnv). */
  env?: Record<string, string>;
  /** Called with the process group id once the command runs. */
  onStart?: (pgid: number) => void;
};

/**
 * Run argv (never through a shell) in its own process group with `env` as
 * its whole environment; at `timeoutSec`, or when `abort` fires, kill the
 * whole group (the command and everything it started): SIGTERM, then SIGKILL
 * after KILL_GRACE_MS. Each output line goes to `onLine`.
 */
export function runCommand(argv: string[], timeoutSec: number, onLine: (line: string) => void, opts: CommandOptions = {}): Promise<CommandOutcome> {
  const [bin, ...args] = argv;
  const { abort, env = commandEnv(), onStart } = opts;
  // Checked here: through setpriv, a command that cannot run would look like one that exited 127.
  const cannot = unrunnable(bin!, env.PATH);
  if (cannot) return Promise.reject(new Error(`cannot run ${bin}: ${cannot}`));
  return new Promise((resolve, reject) => {
    // The command gets SIGTERM from the kernel should this process die; what it started itself is ended by
    // the next attempt (src/coordination/running-commands.ts).
    const [file, fileArgs] = endingWithThisProcess(bin!, args);
    const child = spawn(file, fileArgs, { shell: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    if (child.pid !== undefined) onStart?.(child.pid);
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
    createInterface({ input: child.stdout }).on('line', take);
    createInterface({ input: child.stderr }).on('line', take);
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
