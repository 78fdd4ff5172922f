import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { oneShotClient, redisOptionsFromUrl } from './connection.js';
import { endingWithThisProcess, unrunnable } from '../lifecycle.js';

export class RedisServerMissingError extends Error {
  override name = 'RedisServerMissingError';
  constructor(binary: string) {
    super(
      [
        `"${binary}" was not found on PATH, and REDIS_URL is not set.`,
        'The Jobs API needs Redis. Either:',
        '  - install it: Debian/Ubuntu: sudo apt-get install redis-server   macOS: brew install redis',
        '  - or point it at a Redis you run: REDIS_URL=redis://host:6379 npm start',
        '  - or run everything with Docker: docker compose up',
      ].join('\n'),
    );
  }
}

/** Where a running embedded Redis writes its address, so that worker-only processes on the same DATA_DIR find it. */
const ADDRESS_FILE = 'address';
/** The pid of the process that runs this directory's Redis: a second one is refused while it lives. */
const OWNER_FILE = 'owner.pid';

/** Another `npm start` runs on the same DATA_DIR (its Redis, its socket, its append-only file). */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
  constructor(dataDir: string, pid: number) {
    super(
      `DATA_DIR ${dataDir} is in use by the Jobs API running as process ${pid}: its embedded Redis lives there. ` +
        'Stop that one first (kill -TERM ' + pid + '), or give this one another DATA_DIR (and PORT), or point both at one Redis with REDIS_URL.',
    );
  }
}

/** Whether `pid` is a live Node process (a pid file left by a crash may name a process that reused the number). */
function liveNodeProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return true; // no /proc: trust the pid
  }
}

/** Claim `absDir` for this process, or throw DataDirInUseError naming the one that holds it. */
async function claim(absDir: string): Promise<void> {
  const file = path.join(absDir, OWNER_FILE);
  const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && liveNodeProcess(holder)) {
    throw new DataDirInUseError(path.dirname(absDir), holder);
  }
  await writeFile(file, `${process.pid}\n`);
}

export type EmbeddedRedis = {
  /** A REDIS_URL for the child: a socket path, or redis://127.0.0.1:PORT. */
  url: string;
  pid: number;
  stop(): Promise<void>;
};

// A unix socket path longer than this does not fit in sockaddr_un on Linux.
const MAX_SOCKET_PATH = 100;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Start a private `redis-server` with its data under `dir`: append-only file
 * with fsync every second, `noeviction`, listening on a unix socket (or a free
 * loopback port when the socket path would be too long). Resolves once Redis
 * answers PING.
 */
export async function startEmbeddedRedis(
  dir: string,
  opts: { binary?: string; timeoutMs?: number; onLog?: (line: string) => void } = {},
): Promise<EmbeddedRedis> {
  const binary = opts.binary ?? 'redis-server';
  const absDir = path.resolve(dir);
  await mkdir(absDir, { recursive: true });
  await claim(absDir);
  const socket = path.join(absDir, 'redis.sock');
  const useSocket = socket.length <= MAX_SOCKET_PATH;
  const port = useSocket ? 0 : await freePort();
  const url = useSocket ? socket : `redis://127.0.0.1:${port}`;
  const args = [
    '--dir', absDir,
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--appendonly', 'yes',
    '--appendfsync', 'everysec',
    '--maxmemory-policy', 'noeviction',
    '--save', '',
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    '--logfile', '',
    ...(useSocket ? ['--unixsocket', socket, '--unixsocketperm', '700'] : []),
  ];

  // A process group of its own: Ctrl-C in the terminal reaches the server, which drains its jobs and then
  // stops this Redis; were it in the server's group, Redis would stop first and the drain would fail.
  // And it stops (SIGTERM: it writes its append-only file) should the server die without stopping it.
  if (unrunnable(binary)) throw new RedisServerMissingError(binary);
  const [file, fileArgs] = endingWithThisProcess(binary, args);
  const child: ChildProcess = spawn(file, fileArgs, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 20) output.shift();
      opts.onLog?.(line);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const spawned = await new Promise<Error | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  if (spawned) {
    if ((spawned as NodeJS.ErrnoException).code === 'ENOENT') throw new RedisServerMissingError(binary);
    throw spawned;
  }

  const stop = async () => {
    await rm(path.join(absDir, ADDRESS_FILE), { force: true });
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(path.join(absDir, OWNER_FILE), { force: true });
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`redis-server exited with code ${child.exitCode} at start:\n${output.join('\n')}`);
    }
    if (await answersPing(url)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not answer within ${opts.timeoutMs ?? 15_000} ms:\n${output.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  await writeFile(path.join(absDir, ADDRESS_FILE), `${url}\n`);
  return { url, pid: child.pid ?? 0, stop };
}

/** Whether the Redis at `url` answers PING within `timeoutMs`. */
export async function answersPing(url: string, timeoutMs = 2000): Promise<boolean> {
  const probe = oneShotClient(redisOptionsFromUrl(url), timeoutMs);
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * The address of the embedded Redis that an `npm start` on the same data
 * directory runs (`dir` is DATA_DIR/redis), or undefined when none answers.
 */
export async function findEmbeddedRedis(dir: string): Promise<string | undefined> {
  let url: string;
  try {
    url = (await readFile(path.join(path.resolve(dir), ADDRESS_FILE), 'utf8')).trim();
  } catch {
    return undefined;
  }
  return url && (await answersPing(url)) ? url : undefined;
}
