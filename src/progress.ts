/** The smallest interval between two progress writes that are not milestones. */
const MIN_INTERVAL_MS = 250;

export type ProgressSink = (value: number) => Promise<void>;

/**
 * Progress that only moves forward and is written to Redis as work advances:
 * milestones at once, in-between values at most every 250 ms so that a fast
 * loop does not flood Redis with writes.
 */
export class ProgressReporter {
  private current = -1;
  private lastWrite = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(private readonly sink: ProgressSink) {}

  get value(): number {
    return Math.max(this.current, 0);
  }

  /** A milestone: written at once (after any write in flight). */
  async milestone(value: number): Promise<void> {
    this.set(value, true);
    await this.pending;
  }

  /** A value within a band; written when enough time passed since the last write. */
  advance(value: number): void {
    this.set(value, false);
  }

  /** Map a fraction 0..1 of some work into the band [from, to]. */
  band(from: number, to: number, fraction: number): void {
    const f = Math.min(Math.max(fraction, 0), 1);
    this.advance(Math.floor(from + (to - from) * f));
  }

  flush(): Promise<void> {
    return this.pending;
  }

  private set(value: number, force: boolean): void {
    const v = Math.min(Math.max(Math.round(value), 0), 100);
    if (v <= this.current) return;
    const now = Date.now();
    if (!force && now - this.lastWrite < MIN_INTERVAL_MS) return;
    this.current = v;
    this.lastWrite = now;
    this.pending = this.pending.then(() => this.sink(v));
  }
}
