import type { Job } from 'bullmq';

/**
 * Lines a job writes to its log (GET /api/jobs/:id/logs), in order, without
 * making the work wait for Redis; `flush()` waits for all of them.
 */
export class JobLog {
  private chain: Promise<unknown> = Promise.resolve();
  private notifying = false;
  constructor(
    private readonly job: Job,
    /** Tell listeners (GET /api/jobs/:id/events) that new lines are there; once per batch of lines. */
    private readonly notify?: (jobId: string) => Promise<unknown>,
  ) {}

  line(text: string): void {
    this.chain = this.chain.then(() => this.job.log(text)).catch(() => {});
    if (this.notify && !this.notifying) {
      this.notifying = true;
      this.chain = this.chain
        .then(() => {
          this.notifying = false;
          return this.notify!(this.job.id!);
        })
        .catch(() => {});
    }
  }

  /** A step of the work, as opposed to a command's own output. */
  step(text: string): void {
    this.line(`[jobs-api] ${text}`);
  }

  flush(): Promise<unknown> {
    return this.chain;
  }
}
