import { QUEUE_NAMES } from '../jobs/index.js';
import type { JobStore } from './job-store.js';

export type SweeperOptions = {
  /** Index entries looked at per step (250). */
  batch?: number;
  /** Pause between two steps of one walk (25 ms). */
  stepMs?: number;
  /** Pause between the end of one walk of the index and the start of the next (10 s). */
  restMs?: number;
  onError?: (err: Error) => void;
};

/**
 * Keeps the job index as small as what BullMQ retains: BullMQ drops finished
 * jobs by its retention rules inside its own scripts, so the index walks
 * itself in small steps, one queue's index after the other, and forgets the
 * jobs that are gone. With the
 * defaults it looks at up to 10 000 entries a second while walking (250 at
 * a time, so Redis is never held for long) and rests 10 s between walks, so Redis memory stays flat however many jobs pass through.
 */
export class IndexSweeper {
  private timer: NodeJS.Timeout | undefined;
  private cursor = '0';
  /** The queue whose index the walk is in. */
  private queue = 0;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  /** Totals since start, for logs and tests. */
  readonly totals = { walks: 0, scanned: 0, removed: 0 };

  private readonly batch: number;
  private readonly stepMs: number;
  private readonly restMs: number;

  constructor(
    private readonly store: JobStore,
    private readonly opts: SweeperOptions = {},
  ) {
    this.batch = opts.batch ?? 250;
    this.stepMs = opts.stepMs ?? 25;
    this.restMs = opts.restMs ?? 10_000;
  }

  start(): void {
    this.schedule(this.restMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.step();
    }, ms);
    this.timer.unref();
  }

  private async step(): Promise<void> {
    let next = this.stepMs;
    try {
      const r = await this.store.sweepStep(QUEUE_NAMES[this.queue]!, this.cursor, this.batch);
      this.cursor = r.cursor;
      this.totals.scanned += r.scanned;
      this.totals.removed += r.removed;
      if (r.cursor === '0') {
        this.queue = (this.queue + 1) % QUEUE_NAMES.length;
        if (this.queue === 0) {
          this.totals.walks += 1;
          next = this.restMs;
        }
      }
    } catch (err) {
      // Redis away: try again after a rest, from where the walk was.
      this.opts.onError?.(err as Error);
      next = this.restMs;
    }
    this.schedule(next);
  }
}
