import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const madeDirs: string[] = [];

/** A fresh directory under the OS temp dir; removed when the test file ends (test/cleanup.ts). */
export function tmpDir(label: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `jobs-api-${label}-`));
  madeDirs.push(dir);
  return dir;
}

/** Remove every directory tmpDir made in this test file (retries: a child process may still be closing files). */
export function removeTmpDirs(): void {
  for (const dir of madeDirs.splice(0)) rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
