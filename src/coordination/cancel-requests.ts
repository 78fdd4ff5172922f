import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../redis/keys.js';

/** How long a cancel request waits for a job that is not running anywhere right now (e.g. its process died). */
const REQUEST_TTL_SECONDS = 24 * 3600;

/** The failure reason of a cancelled job. */
export const CANCELLED = 'cancelled';

/**
 * Cancel requests travel from any API process to the process running the
 * job: a key that says "cancel this job" (kept for a day, so a job picked up
 * again after a crash is still cancelled) and a pub/sub message that reaches
 * every worker process at once. This is the asking half; the worker half,
 * which hears and consumes them, is CancelListener (cancel-listener.ts).
 */
export class CancelRequests {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** Ask the job to stop; it fails with `reason` (`cancelled` unless an operator's action says otherwise). */
  async request(jobId: string, reason: string = CANCELLED): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.cancelRequest(jobId), reason, 'EX', REQUEST_TTL_SECONDS)
      .publish(this.keys.cancelChannel, `${jobId}\n${reason}`)
      .exec();
  }

  /** Drop the job's request, if any: the job was ended another way (an operator moved it to failed). */
  async withdraw(jobId: string): Promise<void> {
    await this.redis.getdel(this.keys.cancelRequest(jobId));
  }
}
