import { describe, expect, it } from 'vitest';
import { JobFeed } from '../../src/services/job-feeds.js';
import type { FeedFollower } from '../../src/services/job-feeds.js';
import type { JobView } from '../../src/store/job-store.js';

/**
 * The feed's order and failure handling, with its reads controlled by the test (the streams over a real Redis
 * are test/http/job-stream.test.ts): a read that takes its time must not let a later event overtake it.
 */
describe('a job feed', () => {
  const follower = (seen: string[]): FeedFollower => ({
    progress: (json) => seen.push(`progress ${json}`),
    logs: (feed) => seen.push(`logs ${feed.lines.join(',')}`),
    ended: (feed) => seen.push(`ended ${feed.end?.json}`),
    failed: (err) => seen.push(`failed ${err.message}`),
  });

  it('hands a progress that follows a log line on after that line has been read', async () => {
    let release: () => void = () => {};
    const slow = new Promise<void>((r) => (release = r));
    const feed = new JobFeed('scan_x', {
      logs: async (_id, from) => {
        await slow;
        return from === 0 ? ['line 1'] : [];
      },
      view: async () => ({ id: 'scan_x', state: 'completed' }) as JobView,
    });
    const seen: string[] = [];
    feed.followers.add(follower(seen));
    feed.onEvent({ type: 'log', jobId: 'scan_x' });
    feed.onEvent({ type: 'progress', jobId: 'scan_x', progress: 50 });
    feed.onEvent({ type: 'completed', jobId: 'scan_x' });
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([]);
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['logs line 1', 'progress {"progress":50}', 'ended {"id":"scan_x","state":"completed"}']);
  });

  it('tells its followers when the end cannot be read, so that their streams end instead of waiting for ever', async () => {
    const feed = new JobFeed('scan_y', {
      logs: async () => [],
      view: async () => {
        throw new Error('Connection is closed.');
      },
    });
    const seen: string[] = [];
    feed.followers.add(follower(seen));
    feed.onEvent({ type: 'completed', jobId: 'scan_y' });
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['failed Connection is closed.']);
    expect(feed.end).toBeUndefined();
  });
});
