import { describe, expect, it } from 'vitest';
import { ProgressReporter } from '../../workers/progress.js';

/** A sink that records writes and lets the test decide when each one completes. */
function recorder() {
  const written: number[] = [];
  const waiting: Array<() => void> = [];
  const sink = (v: number) => {
    written.push(v);
    return new Promise<void>((resolve) => waiting.push(resolve));
  };
  const completeAll = async () => {
    while (waiting.length) waiting.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { written, sink, completeAll };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('ProgressReporter', () => {
  it('writes milestones reached in the same turn once, at the end of the turn', async () => {
    const r = recorder();
    const p = new ProgressReporter(r.sink);
    p.milestone(10);
    p.milestone(20);
    expect(r.written).toEqual([]);
    await turn();
    expect(r.written).toEqual([20]);
  });

  it('keeps one write in flight and collapses what arrives meanwhile into the next', async () => {
    const r = recorder();
    const p = new ProgressReporter(r.sink);
    p.milestone(30);
    await turn();
    p.milestone(40);
    p.milestone(50);
    await turn();
    expect(r.written).toEqual([30]);
    await r.completeAll();
    await turn();
    expect(r.written).toEqual([30, 50]);
  });

  it('only moves forward and stays within 0..100', async () => {
    const r = recorder();
    const p = new ProgressReporter(r.sink);
    p.milestone(60);
    p.milestone(40);
    await turn();
    await r.completeAll();
    p.milestone(250);
    await turn();
    expect(r.written).toEqual([60, 100]);
  });

  it('writes band values at most every 250 ms, the latest one when the interval ends', async () => {
    const r = recorder();
    const p = new ProgressReporter(r.sink);
    p.band(40, 90, 0);
    await turn();
    await r.completeAll();
    for (let i = 1; i <= 10; i += 1) p.band(40, 90, i / 20);
    await turn();
    expect(r.written).toEqual([40]);
    await new Promise((res) => setTimeout(res, 300));
    await turn();
    expect(r.written).toEqual([40, 65]);
  });

  it('a job that ends within one turn writes nothing; one that reported progress ends with 100', async () => {
    const quick = recorder();
    const q = new ProgressReporter(quick.sink);
    q.milestone(10);
    q.milestone(20);
    q.finish(100);
    await turn();
    expect(quick.written).toEqual([]);

    const slow = recorder();
    const s = new ProgressReporter(slow.sink);
    s.milestone(20);
    await turn();
    s.milestone(60);
    s.finish(100);
    await turn();
    // 60 was waiting behind the write in flight: dropped; 100 is sent at once.
    expect(slow.written).toEqual([20, 100]);
  });

  it('writes nothing after a failed job finished, and reports write errors without throwing', async () => {
    const errors: string[] = [];
    const p = new ProgressReporter(() => Promise.reject(new Error('redis away')), (e) => errors.push(e.message));
    p.milestone(30);
    await turn();
    await turn();
    expect(errors).toEqual(['redis away']);
    p.finish();
    p.milestone(90);
    await turn();
    expect(errors).toEqual(['redis away']);
  });
});
