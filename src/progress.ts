/** The smallest interval between two progress writes that are not milestones. */
const MIN_INTERVAL_MS = 250;

export type ProgressSink = (value: number) => Promise<void>;

/**
 * Progress that only moves forward and is written to Redis as work advances:
 * milestones at once, in-between values at most every 250 ms (the latest one
 * is written when the interval ends), so a fast loop does not flood Redis.
 */
export class ProgressReporter {
  private written = -1;
  private wanted = -1;
  private lastWrite = 0;
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly sink: ProgressSink) {}

  /** A milestone: written at once (after any write in flight). */
  async milestone(value: number): Promise<void> {
    this.want(value);
    this.write();
    await this.pending;
  }

  /** A value within a band; written now or when the interval since the last write ends. */
  advance(value: number): void {
    if (!this.want(value)) return;
    const wait = MIN_INTERVAL_MS - (Date.now() - this.lastWrite);
    if (wait <= 0) this.write();
    else this.timer ??= setTimeout(() => this.write(), wait);
  }

  /** Map a fraction 0..1 of some work into the band [from, to]. */
  band(from: number, to: number, fraction: number): void {
    const f = Math.min(Math.max(fraction, 0), 1);
    this.advance(Math.floor(from + (to - from) * f));
  }

  /** Wait for writes in flight; drop a trailing write that has not started. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.pending;
  }

  private want(value: number): boolean {
    const v = Math.min(Math.max(Math.round(value), 0), 100);
    if (v <= this.wanted) return false;
    this.wanted = v;
    return true;
  }

  private write(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.wanted <= this.written) return;
    const v = this.wanted;
    this.written = v;
    this.lastWrite = Date.now();
    this.pending = this.pending.then(() => this.sink(v));
  }
}
