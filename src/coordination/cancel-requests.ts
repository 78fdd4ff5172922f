import type { Redis } from 'ioredis';

/** How long a cancel request waits for a job that is not running anywhere right now (e.g. its process died). */
const REQUEST_TTL_SECONDS = 24 * 3600;

/** The failure reason of a cancelled job. */
export const CANCELLED = 'cancelled';

/**
 * Cancel requests travel from any API process to the process running the
 * job: a key that says "cancel this job" (kept for a day, so a job picked up
 * again after a crash is still cancelled) and a pub/sub message that reaches
 * every worker process at once. The process that runs the job aborts its
 * signal; the others ignore the message.
 */
export class CancelRequests {
  /** Jobs this process heard a stop request for (kept a minute), so a job about to start can be stopped without asking Redis. */
  private readonly heard = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  get channel(): string {
    return `${this.prefix}:jobsapi:cancel`;
  }

  private key(jobId: string): string {
    return `${this.prefix}:jobsapi:cancel:${jobId}`;
  }

  /** Ask the job to stop; it fails with `reason` (`cancelled` unless an operator's action says otherwise). */
  async request(jobId: string, reason: string = CANCELLED): Promise<void> {
    await this.redis
      .multi()
      .set(this.key(jobId), reason, 'EX', REQUEST_TTL_SECONDS)
      .publish(this.channel, `${jobId}\n${reason}`)
      .exec();
  }

  /** The reason the job was asked to stop, or undefined; the request is consumed (a retried job starts clean). */
  async take(jobId: string): Promise<string | undefined> {
    this.heard.delete(jobId);
    return (await this.redis.getdel(this.key(jobId))) ?? undefined;
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
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const [jobId = '', reason = CANCELLED] = message.split('\n');
      const now = Date.now();
      for (const [id, until] of this.heard) if (until > now) break; else this.heard.delete(id);
      this.heard.set(jobId, now + 60_000);
      onStop(jobId, reason);
    });
    await subscriber.subscribe(this.channel);
  }
}
