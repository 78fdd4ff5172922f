import { describe, expect, it } from 'vitest';
import { errorType } from '../../src/services/dead-letters.js';

describe('errorType (how dead letters group by cause)', () => {
  it('gives failures of one cause the same type, whatever their particulars', () => {
    const a = errorType('update command exited with code 2 after 31.5 s on server "web-1"');
    const b = errorType('update command exited with code 127 after 0.2 s on server "db"');
    expect(a).toBe(b);
    expect(a).toBe('update command exited with code N after N s on server "…"');
  });

  it('replaces job ids and backup ids, and keeps only the first line', () => {
    expect(errorType('backup 3f2b8c1e-8d4a-4b7e-9c2d-1a2b3c4d5e6f of job backup_abcdefghijklmnopqrstuv is gone\nstack...')).toBe(
      'backup <id> of job <job> is gone',
    );
  });

  it('tells different causes apart, and names a missing reason', () => {
    expect(errorType('connect ECONNREFUSED')).not.toBe(errorType('certificate expired'));
    expect(errorType(null)).toBe('unknown error');
    expect(errorType('x'.repeat(500))).toHaveLength(120);
  });
});
