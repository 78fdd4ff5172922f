import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import picomatch from 'picomatch';
import { Pack } from 'tar';
import { decryptFile, encryptStream, keyId, sha256File } from '../src/backups/archive-crypto.js';
import { expiredBackups, type BackupCatalog, type BackupEntry } from '../src/backups/catalog.js';
import type { Processor } from './run-job.js';
import type { BackupData } from '../src/jobs/index.js';

/** A source file as a backup sees it: path relative to `/`, size, and modification time (ms). */
export type SourceFile = { rel: string; size: number; mtimeMs: number };

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
      files.push({ rel: path.relative('/', abs), size: st.isFile() ? st.size : 0, mtimeMs: Math.trunc(st.mtimeMs) });
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

/** The source as a backup saw it, stored beside the archive: what the next incremental backup compares with. */
type Manifest = { version: 1; backupId: string; files: Array<[rel: string, size: number, mtimeMs: number]> };

/** Files that are new or whose size or mtime changed since `base`, and how many of base's files are gone. */
export function changedSince(files: readonly SourceFile[], base: Manifest): { changed: SourceFile[]; skipped: number; deleted: number } {
  const before = new Map(base.files.map(([rel, size, mtimeMs]) => [rel, { size, mtimeMs }]));
  const changed = files.filter((f) => {
    const b = before.get(f.rel);
    return !b || b.size !== f.size || b.mtimeMs !== f.mtimeMs;
  });
  const now = new Set(files.map((f) => f.rel));
  let deleted = 0;
  for (const rel of before.keys()) if (!now.has(rel)) deleted += 1;
  return { changed, skipped: files.length - changed.length, deleted };
}

async function writeAtomically(file: string, data: Buffer): Promise<void> {
  await writeFile(`${file}.partial`, data, { mode: 0o600 });
  await rename(`${file}.partial`, file);
}

/** Write the manifest (encrypted like its archive). */
async function writeManifest(file: string, manifest: Manifest, key: Buffer | undefined): Promise<void> {
  const plain = Buffer.from(JSON.stringify(manifest));
  if (!key) return writeAtomically(file, plain);
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([plain]), encryptStream(key), async function* (source) {
    for await (const c of source) chunks.push(c as Buffer);
  });
  await writeAtomically(file, Buffer.concat(chunks));
}

export async function readManifest(entry: BackupEntry, key: Buffer | undefined): Promise<Manifest> {
  let raw: Buffer;
  if (entry.encrypted) {
    if (!key) throw new Error('BACKUP_ENCRYPTION_KEY is not configured');
    const chunks: Buffer[] = [];
    for await (const c of await decryptFile(entry.manifest, key)) chunks.push(c as Buffer);
    raw = Buffer.concat(chunks);
  } else {
    raw = await readFile(entry.manifest);
  }
  return JSON.parse(raw.toString('utf8')) as Manifest;
}

/** Delete the archives and records of the server's backups beyond BACKUP_RETENTION (keeping what kept incrementals build on). */
async function applyRetention(catalog: BackupCatalog, serverId: string, keep: number): Promise<BackupEntry[]> {
  const expired = expiredBackups(await catalog.list(serverId), keep);
  for (const e of expired) {
    await rm(e.archive, { force: true });
    await rm(e.manifest, { force: true });
  }
  await catalog.remove(
    serverId,
    expired.map((e) => e.backupId),
  );
  return expired;
}

/** Remove what an interrupted run left: `*.partial` files of the server (the server lock says no other backup of it runs). */
async function removeLeftovers(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const partial = names.filter((n) => n.endsWith('.partial'));
  for (const n of partial) await rm(path.join(dir, n), { force: true });
  return partial.length;
}

const human = (bytes: number) =>
  bytes < 1024 ? `${bytes} B` : bytes < 1024 ** 2 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;

/**
 * backup:manual / backup:scheduled — a tar archive (gzip when `compression`,
 * AES-256-GCM when `encryption`) of the server's declared paths minus its
 * exclude patterns, under BACKUP_DIR/<serverId>/<backupId>.tar[.gz][.enc]:
 * - `incremental` takes only the files added or changed (size or mtime) since
 *   the server's last completed backup (the first one is full);
 * - written under a temporary name, renamed when complete, then re-read and
 *   checked against the SHA-256 computed while writing, before it is listed;
 * - a run again after a crash writes the same names and the same catalog
 *   entry: never two records, never a half-written file;
 * - then the server's backups beyond BACKUP_RETENTION are deleted.
 * Progress 40..89 follows the source bytes the archive has taken in.
 */
export const processBackup: Processor<BackupData> = async (ctx) => {
  const { job, input, server, recordId, progress, log, jobLog, signal, deps } = ctx;
  const catalog = deps.catalog!;
  const key = input.encryption ? deps.config.backupKey : undefined;
  if (input.encryption && !key) throw new Error('encryption was asked for but BACKUP_ENCRYPTION_KEY is not configured on the worker');
  const spec = server.backup!;
  await deps.records.start('backup', recordId, { serverId: server.id, jobId: job.id!, tenant: server.tenant });
  progress.milestone(30);

  const dir = path.join(deps.config.backupDir, server.id);
  await mkdir(dir, { recursive: true });
  const leftovers = await removeLeftovers(dir);
  if (leftovers) jobLog.step(`removed ${leftovers} partial file(s) an interrupted backup left`);

  const roots = spec.paths.map((p) => deps.inventory.resolvePath(p));
  const files = await collectFiles(roots, spec.exclude);
  const sourceBytes = files.reduce((n, f) => n + f.size, 0);
  jobLog.step(`collected ${files.length} files (${human(sourceBytes)}) from ${roots.join(', ')}`);

  let type: 'full' | 'incremental' = 'full';
  let base: BackupEntry | undefined;
  let taken: SourceFile[] = files;
  let skipped = 0;
  let deleted = 0;
  if (input.backup_type === 'incremental') {
    base = (await catalog.list(server.id)).find((e) => e.backupId !== recordId);
    if (!base) {
      jobLog.step('no earlier backup of this server: this incremental backup is a full one');
    } else {
      try {
        const diff = changedSince(files, await readManifest(base, deps.config.backupKey));
        type = 'incremental';
        taken = diff.changed;
        skipped = diff.skipped;
        deleted = diff.deleted;
        jobLog.step(`incremental since backup ${base.backupId}: ${taken.length} new or changed, ${skipped} unchanged, ${deleted} deleted`);
      } catch (err) {
        jobLog.step(`cannot read the file list of backup ${base.backupId} (${(err as Error).message}): taking a full backup`);
        base = undefined;
      }
    }
  }
  progress.milestone(40);

  const ext = `.tar${input.compression ? '.gz' : ''}${key ? '.enc' : ''}`;
  const archive = path.join(dir, `${recordId}${ext}`);
  const manifestFile = path.join(dir, `${recordId}.manifest.json${key ? '.enc' : ''}`);
  const partial = `${archive}.partial`;

  const hash = createHash('sha256');
  let bytes = 0;
  let takenBytes = 0;
  const takenTotal = taken.reduce((n, f) => n + f.size, 0);
  const sizes = new Map(taken.map((f) => [f.rel, f.size]));
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const pack = new Pack({
    cwd: '/',
    gzip: input.compression,
    portable: true,
    noDirRecurse: true,
    onWriteEntry: (entry) => {
      takenBytes += sizes.get(entry.path) ?? 0;
      progress.band(40, 89, takenTotal ? takenBytes / takenTotal : 1);
    },
  });
  for (const f of taken) pack.add(f.rel);
  pack.end();
  try {
    const out = createWriteStream(partial, { mode: 0o600 });
    if (key) await pipeline(pack, encryptStream(key), tap, out, { signal });
    else await pipeline(pack, tap, out, { signal });
    await rename(partial, archive);
    const reread = await sha256File(archive, signal);
    const sha256 = hash.digest('hex');
    if (reread !== sha256) throw new Error(`verification failed: ${archive} reads back with SHA-256 ${reread}, ${sha256} was written`);
    jobLog.step(`archive ${path.basename(archive)} written (${human(bytes)}, ${taken.length} files) and verified: sha256 ${sha256}`);
    progress.milestone(90);

    await writeManifest(manifestFile, { version: 1, backupId: recordId, files: files.map((f) => [f.rel, f.size, f.mtimeMs]) }, key);
    const entry: BackupEntry = {
      backupId: recordId,
      jobId: job.id!,
      serverId: server.id,
      type,
      baseId: type === 'incremental' ? base!.backupId : null,
      compressed: input.compression,
      encrypted: key !== undefined,
      keyId: key ? keyId(key) : null,
      files: taken.length,
      skipped,
      deleted,
      sourceBytes,
      bytes,
      sha256,
      archive,
      manifest: manifestFile,
      createdAt: new Date().toISOString(),
    };
    await catalog.add(entry);
    const expired = await applyRetention(catalog, server.id, deps.config.backupRetention);
    if (expired.length) jobLog.step(`retention (${deps.config.backupRetention} per server): deleted ${expired.map((e) => e.backupId).join(', ')}`);
    log.info({ files: taken.length, skipped, bytes, type }, 'backup written and verified');

    const { keyId: _k, manifest: _m, jobId: _j, ...shown } = entry;
    const result = { ...shown, verified: true };
    await deps.records.finish('backup', recordId, 'completed', result);
    return result;
  } catch (err) {
    await rm(partial, { force: true });
    // An archive that did not verify (or whose run was cancelled after the rename) is not kept.
    if (!(await catalog.get(server.id, recordId))) await rm(archive, { force: true });
    throw err;
  }
};
