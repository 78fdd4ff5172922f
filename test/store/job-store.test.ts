import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../src/store/job-store.js';

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
