import { Backoffs } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JOB_OPTIONS } from '../../src/jobs/index.js';

describe('the default retry policy', () => {
  it('runs a job up to 3 times, waiting 5 s and then 10 s between attempts (BullMQ computes the delays)', () => {
    const { attempts, backoff } = DEFAULT_JOB_OPTIONS;
    // BullMQ asks for a delay after each failed attempt that has another one left: attemptsMade 1 .. attempts-1.
    const delays = Array.from({ length: attempts - 1 }, (_, i) => Backoffs.calculate({ ...backoff }, i + 1, new Error('x'), {} as never));
    expect(attempts).toBe(3);
    expect(delays).toEqual([5000, 10_000]);
  });
});
