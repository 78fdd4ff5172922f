import { Backoffs } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JOB_OPTIONS, retryCeilingMs } from '../../src/jobs/index.js';
import { retryDelay } from '../../workers/create-workers.js';

describe('the default retry policy', () => {
  it('runs a job up to 3 times: 2 retries, the first within 5 s, the second within 10 s (BullMQ asks the workers\' strategy)', () => {
    const { attempts, backoff } = DEFAULT_JOB_OPTIONS;
    expect(attempts).toBe(3);
    // BullMQ asks for a delay after each failed attempt that has another one left: attemptsMade 1 .. attempts-1.
    const job = { opts: { backoff } } as never;
    for (let round = 0; round < 50; round++) {
      const delays = Array.from({ length: attempts - 1 }, (_, i) => Backoffs.calculate({ ...backoff }, i + 1, new Error('x'), job, retryDelay) as number);
      expect(delays).toHaveLength(2);
      delays.forEach((d, i) => {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan([5000, 10_000][i]!);
      });
    }
    expect([1, 2, 3].map((n) => retryCeilingMs(n, backoff.delay, backoff.maxDelay))).toEqual([5000, 10_000, 20_000]);
  });
});
