import os from 'node:os';
import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../redis/keys.js';

/** What a running update command left in Redis: where it runs and who started it. */
export type CommandEntry = { jobId: string; pgid: number; host: string; ownerPid: number; startedAt: number };

export type Leftover =
  | { status: 'none' }
  /** The previous attempt's command was still running on this machine without its worker process: it was ended. */
  | { status: 'ended'; entry: CommandEntry }
  /** It may still run (its worker process lives, or it runs on another machine): the server is not free yet. */
  | { status: 'running'; entry: CommandEntry; why: string };

/** After SIGTERM, a leftover process group gets this long before SIGKILL. */
const END_GRACE_MS = 2000;

/** Compare-and-delete: only the entry of this job. */
const CLEAR_LUA = `local v = redis.call('GET', KEYS[1]) if v and cjson.decode(v).jobId == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Whether a process (`pid`) or a process group (`-pgid`) still exists. */
function exists(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
const groupAlive = (pgid: number) => exists(-pgid);
const processAlive = (pid: number) => exists(pid);

/**
 * The update commands running on servers, one entry per server (the server
 * lock lets one run at a time), kept in Redis for as long as the command may
 * run. A worker process that dies (SIGKILL, a crash) leaves its command's
 * process group behind; the next attempt of any job on that server first ends
 * it when it runs on this machine, and otherwise waits for it: the server is
 * never given two commands at once.
 */
export class RunningCommands {
  private readonly keys: RedisKeys;
  private readonly host = os.hostname();

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** The command of `jobId` runs as process group `pgid`, for at most `ttlMs`. */
  async started(serverId: string, jobId: string, pgid: number, ttlMs: number): Promise<void> {
    const entry: CommandEntry = { jobId, pgid, host: this.host, ownerPid: process.pid, startedAt: Date.now() };
    await this.redis.set(this.keys.runningCommand(serverId), JSON.stringify(entry), 'PX', ttlMs);
  }

  /** The command of `jobId` has ended (its whole group). */
  async ended(serverId: string, jobId: string): Promise<void> {
    await this.redis.eval(CLEAR_LUA, 1, this.keys.runningCommand(serverId), jobId);
  }

  /**
   * Before a command runs on the server: end what a dead worker process left
   * running there (SIGTERM to its group, SIGKILL after END_GRACE_MS), or say
   * that it may still run.
   */
  async endLeftover(serverId: string): Promise<Leftover> {
    const key = this.keys.runningCommand(serverId);
    const raw = await this.redis.get(key);
    if (raw === null) return { status: 'none' };
    const entry = JSON.parse(raw) as CommandEntry;
    if (entry.host !== this.host) {
      return { status: 'running', entry, why: `the previous attempt's command (job ${entry.jobId}) may still run on ${entry.host}` };
    }
    if (groupAlive(entry.pgid) && entry.ownerPid !== process.pid && processAlive(entry.ownerPid)) {
      return { status: 'running', entry, why: `the previous attempt's command (job ${entry.jobId}) still runs under worker process ${entry.ownerPid}` };
    }
    if (groupAlive(entry.pgid)) {
      process.kill(-entry.pgid, 'SIGTERM');
      const deadline = Date.now() + END_GRACE_MS;
      while (groupAlive(entry.pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (groupAlive(entry.pgid)) process.kill(-entry.pgid, 'SIGKILL');
      while (groupAlive(entry.pgid)) await new Promise((r) => setTimeout(r, 20));
      await this.redis.eval(CLEAR_LUA, 1, key, entry.jobId);
      return { status: 'ended', entry };
    }
    await this.redis.eval(CLEAR_LUA, 1, key, entry.jobId);
    return { status: 'none' };
  }
}
