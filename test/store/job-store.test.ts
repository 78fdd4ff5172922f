import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, mergeWalks } from '../../src/store/job-store.js';

describe('list cursors (nextCursor)', () => {
  const id = 'scan_AAAAAAAAAAAAAAAAAAAAAA';

  it('round-trip the position they encode, and are opaque URL-safe text', () => {
    const cursor = encodeCursor('1764671000123', id);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor).not.toContain(id);
    expect(decodeCursor(cursor)).toEqual(['1764671000123', id]);
  });

  it('refuse anything this API did not hand out', () => {
    const forged = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const bad of [
      '',
      'not a cursor',
      forged(['1764671000123']),
      forged(['12abc', id]),
      forged(['1'.repeat(17), id]),
      forged(['1764671000123', 'someone_elses_key']),
      forged({ score: '1', id }),
    ]) {
      expect(decodeCursor(bad), bad).toBeUndefined();
    }
  });
});

describe('one page over several queue indexes (mergeWalks)', () => {
  // A walk's row is { id, score, ... }; a walk says where it stopped, or nothing when its index ended.
  const row = (id: string, score: number) => [id, String(score), 'waiting'];
  const ids = (rows: unknown[][]) => rows.map((r) => r[0]);

  it('interleaves the queues newest first, and ties of one millisecond by id, as one index would', () => {
    const { rows, next } = mergeWalks(
      [
        [null, null, [row('scan_b', 30), row('scan_a', 10)]],
        [null, null, [row('update_c', 30), row('update_a', 20)]],
        [null, null, []],
      ],
      10,
    );
    expect(ids(rows)).toEqual(['update_c', 'scan_b', 'update_a', 'scan_a']);
    expect(next).toBeNull();
  });

  it('ends the page where a walk stopped early: past it, that queue was not read', () => {
    // scan's walk ran out of budget at 25; update's index went on below it.
    const { rows, next } = mergeWalks(
      [
        ['25', 'scan_x', [row('scan_b', 30)]],
        [null, null, [row('update_c', 28), row('update_b', 20), row('update_a', 5)]],
      ],
      10,
    );
    expect(ids(rows)).toEqual(['scan_b', 'update_c']);
    expect(next).toEqual(['25', 'scan_x']);
  });

  it('cuts at the limit and points the cursor at the last job shown', () => {
    const { rows, next } = mergeWalks(
      [
        ['10', 'scan_a', [row('scan_c', 40), row('scan_b', 20), row('scan_a', 10)]],
        ['15', 'update_a', [row('update_b', 30), row('update_a', 15)]],
      ],
      3,
    );
    expect(ids(rows)).toEqual(['scan_c', 'update_b', 'scan_b']);
    expect(next).toEqual(['20', 'scan_b']);
  });
});
