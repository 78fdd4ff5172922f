import { describe, expect, it } from 'vitest';
import { expiredBackups, type BackupEntry } from '../../src/backups/catalog.js';

/** A catalog entry with only what retention looks at. */
function entry(backupId: string, baseId: string | null = null): BackupEntry {
  return { backupId, baseId, type: baseId ? 'incremental' : 'full' } as BackupEntry;
}

describe('expiredBackups (BACKUP_RETENTION)', () => {
  it('keeps the newest `keep` full backups and deletes the rest', () => {
    const entries = ['f5', 'f4', 'f3', 'f2', 'f1'].map((id) => entry(id));
    expect(expiredBackups(entries, 2).map((e) => e.backupId)).toEqual(['f3', 'f2', 'f1']);
    expect(expiredBackups(entries, 10)).toEqual([]);
  });

  it('keeps the chain a kept incremental backup builds on, however old', () => {
    // newest first: i3 <- i2 <- f1 (a chain), then an older full backup f0 that nothing needs.
    const entries = [entry('i3', 'i2'), entry('i2', 'f1'), entry('f1'), entry('f0')];
    expect(expiredBackups(entries, 1).map((e) => e.backupId)).toEqual(['f0']);
  });

  it('deletes an old chain as a whole once no kept backup builds on it', () => {
    const entries = [entry('f9'), entry('i2', 'f1'), entry('f1')];
    expect(expiredBackups(entries, 1).map((e) => e.backupId)).toEqual(['i2', 'f1']);
  });
});
