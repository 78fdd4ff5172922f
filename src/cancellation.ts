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

  async request(jobId: string): Promise<void> {
    await this.redis.multi().set(this.key(jobId), '1', 'EX', REQUEST_TTL_SECONDS).publish(this.channel, jobId).exec();
  }

  /** Whether the job was asked to stop; the request is consumed (a retried job starts clean). */
  async take(jobId: string): Promise<boolean> {
    return (await this.redis.getdel(this.key(jobId))) !== null;
  }

  /** Call `onCancel(jobId)` for every request, on a connection of its own (subscribed connections do nothing else). */
  async listen(subscriber: Redis, onCancel: (jobId: string) => void): Promise<void> {
    subscriber.on('message', (channel: string, jobId: string) => {
      if (channel === this.channel) onCancel(jobId);
    });
    await subscriber.subscribe(this.channel);
  }
}
