/** The smallest interval between two progress writes that are not milestones. */
const MIN_INTERVAL_MS = 250;

export type ProgressSink = (value: number) => Promise<void>;

/**
 * Progress that only moves forward and is written to Redis as work advances,
 * without making the work wait for Redis:
 * - a milestone is written at the end of the current turn of the event loop,
 *   so milestones reached together (no I/O between them) make one write;
 * - values within a band are written at most every 250 ms (the latest one
 *   when the interval ends);
 * - one write at a time: values that arrive meanwhile collapse into the next.
 * A job that ends within one turn writes nothing: its completion says it all.
 */
export class ProgressReporter {
  private sent = -1;
  private wanted = -1;
  private lastWrite = 0;
  private timer: NodeJS.Timeout | undefined;
  private turn: NodeJS.Immediate | undefined;
  private inFlight: Promise<void> | undefined;
  private finished = false;

  constructor(
    private readonly sink: ProgressSink,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /** A milestone: written at the end of this turn (or once the write in flight is done). */
  milestone(value: number): void {
    if (this.want(value)) this.soon();
  }

  /** A value within a band; written when the interval since the last write has passed. */
  advance(value: number): void {
    if (!this.want(value)) return;
    const wait = MIN_INTERVAL_MS - (Date.now() - this.lastWrite);
    if (wait <= 0) this.soon();
    else
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.soon();
      }, wait);
  }

  /** Map a fraction 0..1 of some work into the band [from, to]. */
  band(from: number, to: number, fraction: number): void {
    const f = Math.min(Math.max(fraction, 0), 1);
    this.advance(Math.floor(from + (to - from) * f));
  }

  /**
   * The job is over: drop values not yet written. With `final` (100 on
   * success), a job that reported progress writes it now, so that listeners
   * see the end; the write is sent before anything the caller sends next on
   * the same connection, so the caller need not wait for it.
   */
  finish(final?: number): void {
    this.finished = true;
    clearImmediate(this.turn);
    clearTimeout(this.timer);
    if (final !== undefined && this.sent >= 0 && final > this.sent) {
      this.sent = final;
      this.sink(final).catch(this.onError);
    }
  }

  private want(value: number): boolean {
    const v = Math.min(Math.max(Math.round(value), 0), 100);
    if (this.finished || v <= this.wanted) return false;
    this.wanted = v;
    return true;
  }

  private soon(): void {
    this.turn ??= setImmediate(() => {
      this.turn = undefined;
      this.write();
    });
  }

  private write(): void {
    if (this.finished || this.inFlight || this.wanted <= this.sent) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const v = this.wanted;
    this.sent = v;
    this.lastWrite = Date.now();
    this.inFlight = this.sink(v)
      .catch(this.onError)
      .finally(() => {
        this.inFlight = undefined;
        if (this.wanted > this.sent) this.soon();
      });
  }
}
