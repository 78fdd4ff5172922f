import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { CANCELLED } from './cancel-requests.js';

/**
 * The worker half of cancel requests (CancelRequests asks): hears every
 * request on pub/sub, so the process that runs the job aborts its signal (the
 * others ignore the message), and consumes the request key when the job
 * stops or starts again.
 */
export class CancelListener {
  /** Jobs this process heard a stop request for (kept a minute), so a job about to start can be stopped without asking Redis. */
  private readonly heard = new Map<string, number>();
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** The reason the job was asked to stop, or undefined; the request is consumed (a retried job starts clean). */
  async take(jobId: string): Promise<string | undefined> {
    this.heard.delete(jobId);
    return (await this.redis.getdel(this.keys.cancelRequest(jobId))) ?? undefined;
  }

  /**
   * Whether a job about to start was asked to stop. A job started for the
   * first time can only have been cancelled while this process listened, so
   * the answer is local; a job started before (its process died, or it waited
   * for its server's lock) asks Redis, where the request waits for it.
   */
  async requested(job: { id?: string; attemptsStarted: number; attemptsMade: number }): Promise<string | undefined> {
    const id = job.id!;
    if (this.heard.has(id) || job.attemptsStarted > job.attemptsMade + 1) return this.take(id);
    return undefined;
  }

  /** Call `onStop(jobId, reason)` for every request, on a connection of its own (subscribed connections do nothing else). */
  async listen(subscriber: Redis, onStop: (jobId: string, reason: string) => void): Promise<void> {
    const channel = this.keys.cancelChannel;
    subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      const [jobId = '', reason = CANCELLED] = message.split('\n');
      const now = Date.now();
      for (const [id, until] of this.heard) if (until > now) break; else this.heard.delete(id);
      this.heard.set(jobId, now + 60_000);
      onStop(jobId, reason);
    });
    await subscriber.subscribe(channel);
  }
}
