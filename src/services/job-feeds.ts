import type { JobView } from '../store/job-store.js';
import type { JobEvent, JobEventsHub } from './job-events.js';

/** What a feed reads from Redis: a job's log lines from an index, and the job as it is now (no tenant check: the follower has made it). */
export interface FeedSource {
  logs(jobId: string, from: number): Promise<string[]>;
  view(jobId: string): Promise<JobView | undefined>;
}

/** What a follower of a job (one event stream) is told. Each call is a nudge: the follower reads what it has not written yet from the feed. */
export interface FeedFollower {
  progress(json: string): void;
  logs(feed: JobFeed): void;
  ended(feed: JobFeed): void;
  /** The job's end could not be read (Redis away): the stream ends, and its client reconnects to a fresh snapshot. */
  failed(err: Error): void;
}

/**
 * One job's events for every follower in this process: one subscription to
 * the hub, one read of the new log lines per notification and one read of the
 * job when it ends, whatever the number of streams that follow it (a thousand
 * browsers on one backup cost what one does). What it sends is serialized
 * once: `logJson[i]` is the data of log line `i`, `endJson` that of the last event.
 */
export class JobFeed {
  /** Every log line read so far, from index 0 (a job keeps at most about a thousand). */
  readonly lines: string[] = [];
  readonly logJson: string[] = [];
  /** The job once it has ended (`null`: it is gone). */
  end: { view: JobView | undefined; json: string } | undefined;
  readonly followers = new Set<FeedFollower>();
  /** Settles once the feed listens to the hub; answers how to stop listening. */
  watching: Promise<() => void> | undefined;
  /** Its lines were read once while it listened: from then on every new line comes with a notification. */
  live = false;
  private reading: Promise<void> | undefined;
  private again = false;
  private ending: Promise<void> | undefined;

  constructor(
    readonly jobId: string,
    private readonly source: FeedSource,
  ) {}

  /** Events are handed on in the order they came: a progress that follows a log line waits for that line's read. */
  private order: Promise<void> = Promise.resolve();

  onEvent(e: JobEvent): void {
    this.order = this.order.then(() => this.handle(e));
  }

  private async handle(e: JobEvent): Promise<void> {
    if (e.type === 'progress') {
      const json = JSON.stringify({ progress: e.progress });
      for (const f of this.followers) f.progress(json);
    } else if (e.type === 'log') {
      // A failed read is made up by the next one, which reads every line from the last one read.
      await this.refresh().then(
        () => {
          for (const f of this.followers) f.logs(this);
        },
        () => {},
      );
    } else {
      await this.finish().catch((err: Error) => {
        for (const f of this.followers) f.failed(err);
      });
    }
  }

  /**
   * Read the lines not read yet: one read at a time; a notification that comes
   * while one is on its way makes one more read after it (which gets every
   * line written meanwhile), however many notifications came.
   */
  refresh(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.again = false;
          const more = await this.source.logs(this.jobId, this.lines.length);
          for (const line of more) {
            this.logJson.push(JSON.stringify({ index: this.lines.length, line }));
            this.lines.push(line);
          }
        } while (this.again);
      } finally {
        this.reading = undefined;
      }
    };
    this.reading = run();
    return this.reading;
  }

  /** The job has ended (or a follower saw it ended: `known`): read the last lines and the job once, then tell every follower. */
  finish(known?: JobView): Promise<void> {
    this.ending ??= (async () => {
      await this.refresh();
      const view = known ?? (await this.source.view(this.jobId));
      this.end = { view, json: JSON.stringify(view ?? { jobId: this.jobId }) };
      for (const f of this.followers) f.ended(this);
    })();
    // A failed read may be tried again by the next event or follower.
    this.ending.catch(() => (this.ending = undefined));
    return this.ending;
  }
}

/** The feeds of this process, one per followed job, dropped with their last follower. */
export class JobFeeds {
  private readonly feeds = new Map<string, JobFeed>();

  constructor(
    private readonly hub: JobEventsHub,
    private readonly source: FeedSource,
  ) {}

  /**
   * Follow `jobId`: the answer is its feed, subscribed before it is returned
   * (nothing that happens from now on is missed) and with every log line that
   * existed when the first follower came. Call `leave` when the stream ends.
   */
  async follow(jobId: string, follower: FeedFollower): Promise<{ feed: JobFeed; leave: () => void }> {
    let feed = this.feeds.get(jobId);
    // A feed whose job has ended is left to its last streams: a job retried since then gets a new one.
    if (!feed || feed.end) {
      const fresh = new JobFeed(jobId, this.source);
      fresh.watching = this.hub.watch(jobId, (e) => fresh.onEvent(e));
      this.feeds.set(jobId, (feed = fresh));
    }
    const own = feed;
    own.followers.add(follower);
    const leave = () => {
      if (!own.followers.delete(follower) || own.followers.size > 0) return;
      if (this.feeds.get(jobId) === own) this.feeds.delete(jobId);
      own.watching?.then((stop) => stop(), () => {});
    };
    try {
      await own.watching;
      if (!own.live) {
        await own.refresh();
        own.live = true;
      }
    } catch (err) {
      leave();
      throw err;
    }
    return { feed: own, leave };
  }

  /** Jobs followed in this process. */
  get size(): number {
    return this.feeds.size;
  }

  /** Followers (open event streams) of every job in this process. */
  get followers(): number {
    let n = 0;
    for (const feed of this.feeds.values()) n += feed.followers.size;
    return n;
  }
}
