import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import picomatch from 'picomatch';
import { create as createTar } from 'tar';
import type { Processor } from '../src/job-runner.js';
import type { BackupData } from '../src/job-types.js';

type SourceFile = { rel: string; size: number };

/**
 * Everything under the declared paths that is not excluded. Patterns without a
 * slash match a file or directory name anywhere (`*.log`, `node_modules`);
 * patterns with one match the absolute path (`/srv/www/cache/**`). An excluded
 * directory is not descended into.
 */
export async function collectFiles(roots: string[], exclude: string[]): Promise<SourceFile[]> {
  const byName = picomatch(exclude.filter((p) => !p.includes('/')), { dot: true });
  const byPath = picomatch(exclude.filter((p) => p.includes('/')), { dot: true });
  const excluded = (abs: string) => byName(path.basename(abs)) || byPath(abs);
  const files: SourceFile[] = [];
  const seen = new Set<string>();

  async function walk(abs: string): Promise<void> {
    if (excluded(abs) || seen.has(abs)) return;
    seen.add(abs);
    const st = await lstat(abs);
    if (st.isDirectory()) {
      const entries = await readdir(abs);
      entries.sort();
      for (const name of entries) await walk(path.join(abs, name));
    } else if (st.isFile() || st.isSymbolicLink()) {
      files.push({ rel: path.relative('/', abs), size: st.isFile() ? st.size : 0 });
    }
  }

  for (const root of roots) {
    try {
      await stat(root);
    } catch {
      throw new Error(`backup path ${root} does not exist or cannot be read`);
    }
    await walk(root);
  }
  return files;
}

/**
 * backup:* — a tar archive (gzip when `compression`) of the server's declared
 * paths minus its exclude patterns, written under BACKUP_DIR/<serverId>/ under
 * a temporary name and renamed when complete. Progress 40..90 follows the
 * source bytes the archive has taken in.
 */
export const processBackup: Processor<BackupData> = async ({ job, input, server, recordId, progress, log, deps }) => {
  const spec = server.backup!;
  await deps.records.start('backup', recordId, { serverId: server.id, jobId: job.id!, tenant: server.tenant });
  progress.milestone(30);

  const roots = spec.paths.map((p) => deps.inventory.resolvePath(p));
  const files = await collectFiles(roots, spec.exclude);
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  log.info({ files: files.length, bytes: totalBytes }, 'backup source collected');
  progress.milestone(40);

  const dir = path.join(deps.config.backupDir, server.id);
  await mkdir(dir, { recursive: true });
  const archive = path.join(dir, `${recordId}.tar${input.compression ? '.gz' : ''}`);
  const partial = `${archive}.partial`;

  const hash = createHash('sha256');
  let archiveBytes = 0;
  let taken = 0;
  const sizes = new Map(files.map((f) => [f.rel, f.size]));
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      archiveBytes += chunk.length;
      done(null, chunk);
    },
  });
  const tarStream = createTar(
    {
      cwd: '/',
      gzip: input.compression,
      portable: true,
      noDirRecurse: true,
      onWriteEntry: (entry) => {
        taken += sizes.get(entry.path) ?? 0;
        progress.band(40, 89, totalBytes ? taken / totalBytes : files.length ? 1 : 0);
      },
    },
    files.map((f) => f.rel),
  );
  try {
    await pipeline(tarStream, tap, createWriteStream(partial, { mode: 0o600 }));
    await rename(partial, archive);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  const sha256 = hash.digest('hex');
  progress.milestone(90);

  const result = {
    backupId: recordId,
    serverId: server.id,
    archive,
    compressed: input.compression,
    files: files.length,
    sourceBytes: totalBytes,
    bytes: archiveBytes,
    sha256,
  };
  await deps.records.finish('backup', recordId, 'completed', result);
  return result;
};
