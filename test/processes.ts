import { spawn, type ChildProcess } from 'node:child_process';

export type Run = { child: ChildProcess; out: () => string; exited: Promise<number | null> };

/**
 * Run a TypeScript entry point (src/main.ts, workers/main.ts) as a process of its own with only the env given:
 * node with tsx's loader, so that the signals a test sends reach the product itself, not a launcher.
 */
export function startEntry(entry: string, env: Record<string, string>, opts: { detached?: boolean } = {}): Run {
  return track(
    spawn(process.execPath, ['--import', 'tsx', entry], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A process group of its own, as a shell gives a command: the test can signal the whole group.
      detached: opts.detached ?? false,
    }),
  );
}

/** `npm <script>` as a user or a supervisor starts it (npm, its shell, then the product). */
export function startNpm(env: Record<string, string>, script = 'start'): Run {
  return track(
    spawn('npm', ['run', '-s', script], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

function track(child: ChildProcess): Run {
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, exited };
}

/** The first match of `pattern` in the process's output, waiting for it to appear. */
export async function waitForOutput(run: Run, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = run.out().match(pattern);
    if (m) return m;
    if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`no ${pattern} in output:\n${run.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
