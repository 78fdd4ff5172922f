import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { errorType, type QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { DEAD_GROUPS_LUA, DEAD_RECONCILE_LUA } from '../redis/lua/dead-letters.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiDeadReconcile(qprefix: string, jobs: string, deadPrefix: string, allIndex: string, mark: string, ...pairs: string[]): Promise<number>;
    jobsapiDeadGroups(qprefix: string, jobs: string, deadPrefix: string, scope: string, skipNew: string): Promise<string[]>;
  }
}

/** One error type of a queue's dead letters: how many, and the newest. */
export type DeadGroup = { errorType: string; count: number; newest: { jobId: string; type: string; failedReason: string | null; finishedAt: string | null } };

/** The failure reason of a job stopped on request (src/coordination/cancel-requests.ts), which its state reads as `cancelled`. */
const CANCELLED_REASON = 'cancelled';

/** Rounds of new failures one grouping counts before it answers (500 a round: a first grouping after an upgrade may have many). */
const MAX_ROUNDS = 200;

/**
 * The dead-letter aggregate of each queue (src/redis/lua/dead-letters.ts):
 * failed jobs by tenant and error type, so that grouping them costs the
 * number of error types and listing or replaying them costs what is
 * returned, however many jobs the queue holds. The worker that fails a job
 * for good counts it (workers/runtime.ts); a grouping also counts what failed
 * since the last one (a failure moved there by a stall check, or one whose
 * worker died before it could count it). A job leaves it when the API retries
 * or removes it; the index sweep and the listing forget any other that is
 * gone or no longer failed.
 */
export class DeadLetterIndex {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiDeadReconcile', { numberOfKeys: 4, lua: DEAD_RECONCILE_LUA });
    redis.defineCommand('jobsapiDeadGroups', { numberOfKeys: 3, lua: DEAD_GROUPS_LUA });
  }

  /** The index of a tenant's dead letters of a queue (every tenant's: `undefined`), or of those of one error type, by creation time: for the listing to walk. */
  index(queue: QueueName, tenant: string | undefined, type?: string): string {
    if (type === undefined) return this.keys.deadLetters.all(queue, tenant);
    return this.keys.deadLetters.ofType(queue, tenant, createHash('sha1').update(type).digest('hex'));
  }

  /** The keys of the reconcile script (for a transaction that runs it: JobStore.remove). */
  reconcileKeys(queue: QueueName): [string, string, string, string] {
    const { deadLetters } = this.keys;
    return [this.keys.queue(queue), deadLetters.jobs(queue), deadLetters.prefix(queue), this.keys.index.all(queue)];
  }

  /** Bring these jobs in line: each counted under its reason's error type when failed, forgotten otherwise (`reason` undefined: forget only). */
  async reconcile(queue: QueueName, jobs: Array<{ id: string; reason?: string | null }>, mark = ''): Promise<void> {
    // A job stopped on request is cancelled, not a dead letter (BullMQ keeps it as failed with the reason `cancelled`).
    const pairs = jobs.flatMap((j) => [j.id, j.reason === undefined || j.reason === CANCELLED_REASON ? '' : errorType(j.reason)]);
    await this.redis.jobsapiDeadReconcile(...this.reconcileKeys(queue), mark, ...pairs);
  }

  /** The error types of a tenant's dead letters of one queue (`undefined`: every tenant's), newest failures included. */
  async groups(queue: QueueName, tenant: string | undefined): Promise<DeadGroup[]> {
    const { deadLetters } = this.keys;
    const args = [this.keys.queue(queue), deadLetters.jobs(queue), deadLetters.prefix(queue), tenant ?? '*'] as const;
    let lastMark: string | undefined;
    for (let round = 0; ; round += 1) {
      // No progress (the same failures came back: they cannot be counted), or enough rounds: answer with what is counted.
      const skip = round >= MAX_ROUNDS ? '1' : '';
      const out = await this.redis.jobsapiDeadGroups(...args, skip);
      if (out[0] === 'groups') return toGroups(out);
      const mark = out[1]!;
      const fresh: Array<{ id: string; reason: string }> = [];
      for (let i = 2; i + 1 < out.length; i += 2) fresh.push({ id: out[i]!, reason: out[i + 1]! });
      await this.reconcile(queue, fresh, mark);
      if (mark === lastMark) return toGroups(await this.redis.jobsapiDeadGroups(...args, '1'));
      lastMark = mark;
    }
  }
}

function toGroups(out: string[]): DeadGroup[] {
  const groups: DeadGroup[] = [];
  for (let i = 1; i + 5 < out.length; i += 6) {
    const finishedOn = Number(out[i + 5]);
    groups.push({
      errorType: out[i]!,
      count: Number(out[i + 1]),
      newest: { jobId: out[i + 2]!, type: out[i + 3]!, failedReason: out[i + 4] || null, finishedAt: finishedOn ? new Date(finishedOn).toISOString() : null },
    });
  }
  return groups;
}
