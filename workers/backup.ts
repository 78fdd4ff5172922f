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
import type { ProgressReporter } from './progress.js';
import type { JobContext, Processor } from './run-job.js';
import type { BackupData, BackupResult } from '../src/jobs/index.js';

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
  await pipeline(Readable.from([plain]), encryptStream(key), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) chunks.push(c);
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

type BackupContext = JobContext<BackupData>;

/** The source as collected, and what of it this backup takes. */
type Plan = {
  files: SourceFile[];
  sourceBytes: number;
  type: BackupEntry['type'];
  baseId: string | null;
  taken: SourceFile[];
  skipped: number;
  deleted: number;
};

/** Where a backup's files go: named after its record, so that a run again after a crash writes the same names. */
type Output = { archive: string; manifest: string; partial: string };

/** What writing the archive measured: its size and SHA-256 as written. */
type Written = { bytes: number; sha256: string };

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
export const processBackup: Processor<BackupData, BackupResult> = async (ctx) => {
  const { job, input, server, recordId, progress, jobLog, signal, deps } = ctx;
  const key = input.encryption ? deps.config.backupKey : undefined;
  if (input.encryption && !key) throw new Error('encryption was asked for but BACKUP_ENCRYPTION_KEY is not configured on the worker');
  await deps.records.start('backup', recordId, { serverId: server.id, jobId: job.id!, tenant: server.tenant });
  progress.milestone(30);

  const dir = await prepareDir(ctx);
  const plan = await planBackup(ctx, await collectSource(ctx));
  progress.milestone(40);

  const out = outputOf(dir, recordId, input.compression, key);
  const pack = packFiles(plan.taken, input.compression, progress);
  try {
    const written = await writePartial(pack, out.partial, key, signal);
    await verifyArchive(out, written, signal);
    jobLog.step(`archive ${path.basename(out.archive)} written (${human(written.bytes)}, ${plan.taken.length} files) and verified: sha256 ${written.sha256}`);
    progress.milestone(90);

    const entry = await commit(ctx, key, plan, out, written);
    const result = resultOf(entry);
    await deps.records.finish('backup', recordId, 'completed', result);
    return result;
  } catch (err) {
    await discardUnlisted(deps.catalog!, server.id, recordId, out);
    throw err;
  }
};

/** The server's backup directory, without what an interrupted run left in it. */
async function prepareDir({ server, jobLog, deps }: BackupContext): Promise<string> {
  const dir = path.join(deps.config.backupDir, server.id);
  await mkdir(dir, { recursive: true });
  const leftovers = await removeLeftovers(dir);
  if (leftovers) jobLog.step(`removed ${leftovers} partial file(s) an interrupted backup left`);
  return dir;
}

async function collectSource({ server, jobLog, deps }: BackupContext): Promise<Pick<Plan, 'files' | 'sourceBytes'>> {
  const spec = server.backup!;
  const roots = spec.paths.map((p) => deps.inventory.resolvePath(p));
  const files = await collectFiles(roots, spec.exclude);
  const sourceBytes = files.reduce((n, f) => n + f.size, 0);
  jobLog.step(`collected ${files.length} files (${human(sourceBytes)}) from ${roots.join(', ')}`);
  return { files, sourceBytes };
}

/**
 * An incremental backup builds on the server's latest other backup. Without
 * one, or when that one's file list cannot be read, a full backup still
 * protects the data where failing would not.
 */
async function planBackup({ input, server, recordId, jobLog, deps }: BackupContext, source: Pick<Plan, 'files' | 'sourceBytes'>): Promise<Plan> {
  const full: Plan = { ...source, type: 'full', baseId: null, taken: source.files, skipped: 0, deleted: 0 };
  if (input.backup_type !== 'incremental') return full;
  const base = (await deps.catalog!.list(server.id)).find((e) => e.backupId !== recordId);
  if (!base) {
    jobLog.step('no earlier backup of this server: this incremental backup is a full one');
    return full;
  }
  try {
    const { changed, skipped, deleted } = changedSince(source.files, await readManifest(base, deps.config.backupKey));
    jobLog.step(`incremental since backup ${base.backupId}: ${changed.length} new or changed, ${skipped} unchanged, ${deleted} deleted`);
    return { ...source, type: 'incremental', baseId: base.backupId, taken: changed, skipped, deleted };
  } catch (err) {
    jobLog.step(`cannot read the file list of backup ${base.backupId} (${(err as Error).message}): taking a full backup`);
    return full;
  }
}

function outputOf(dir: string, recordId: string, compression: boolean, key: Buffer | undefined): Output {
  const archive = path.join(dir, `${recordId}.tar${compression ? '.gz' : ''}${key ? '.enc' : ''}`);
  return { archive, manifest: path.join(dir, `${recordId}.manifest.json${key ? '.enc' : ''}`), partial: `${archive}.partial` };
}

/** The tar stream of the files taken; it reports progress as it takes in each file, since the bytes it writes out are compressed. */
function packFiles(taken: readonly SourceFile[], gzip: boolean, progress: ProgressReporter): Pack {
  let takenBytes = 0;
  const takenTotal = taken.reduce((n, f) => n + f.size, 0);
  const sizes = new Map(taken.map((f) => [f.rel, f.size]));
  const pack = new Pack({
    cwd: '/',
    gzip,
    portable: true,
    noDirRecurse: true,
    onWriteEntry: (entry) => {
      takenBytes += sizes.get(entry.path) ?? 0;
      progress.band(40, 89, takenTotal ? takenBytes / takenTotal : 1);
    },
  });
  for (const f of taken) pack.add(f.rel);
  pack.end();
  return pack;
}

/** The archive under its temporary name, hashed on its way to the disk: the SHA-256 its verification compares with. */
async function writePartial(pack: Pack, partial: string, key: Buffer | undefined, signal: AbortSignal): Promise<Written> {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const out = createWriteStream(partial, { mode: 0o600 });
  if (key) await pipeline(pack, encryptStream(key), tap, out, { signal });
  else await pipeline(pack, tap, out, { signal });
  return { bytes, sha256: hash.digest('hex') };
}

/** Renamed, then read back: what the disk holds must be what was written. */
async function verifyArchive(out: Output, { sha256 }: Written, signal: AbortSignal): Promise<void> {
  await rename(out.partial, out.archive);
  const reread = await sha256File(out.archive, signal);
  if (reread !== sha256) throw new Error(`verification failed: ${out.archive} reads back with SHA-256 ${reread}, ${sha256} was written`);
}

/** The manifest before the catalog entry (the next incremental backup reads it), then retention, which must count the new backup. */
async function commit(
  { job, input, server, recordId, log, jobLog, deps }: BackupContext,
  key: Buffer | undefined,
  plan: Plan,
  out: Output,
  written: Written,
): Promise<BackupEntry> {
  const catalog = deps.catalog!;
  await writeManifest(out.manifest, { version: 1, backupId: recordId, files: plan.files.map((f) => [f.rel, f.size, f.mtimeMs]) }, key);
  const entry: BackupEntry = {
    backupId: recordId,
    jobId: job.id!,
    serverId: server.id,
    type: plan.type,
    baseId: plan.baseId,
    compressed: input.compression,
    encrypted: key !== undefined,
    keyId: key ? keyId(key) : null,
    files: plan.taken.length,
    skipped: plan.skipped,
    deleted: plan.deleted,
    sourceBytes: plan.sourceBytes,
    bytes: written.bytes,
    sha256: written.sha256,
    archive: out.archive,
    manifest: out.manifest,
    createdAt: new Date().toISOString(),
  };
  await catalog.add(entry);
  const expired = await applyRetention(catalog, server.id, deps.config.backupRetention);
  if (expired.length) jobLog.step(`retention (${deps.config.backupRetention} per server): deleted ${expired.map((e) => e.backupId).join(', ')}`);
  log.info({ files: entry.files, skipped: entry.skipped, bytes: entry.bytes, type: entry.type }, 'backup written and verified');
  return entry;
}

/** The entry without what only the catalog needs (jobId, keyId, manifest), in the entry's order. */
function resultOf(entry: BackupEntry): BackupResult {
  return {
    backupId: entry.backupId,
    serverId: entry.serverId,
    type: entry.type,
    baseId: entry.baseId,
    compressed: entry.compressed,
    encrypted: entry.encrypted,
    files: entry.files,
    skipped: entry.skipped,
    deleted: entry.deleted,
    sourceBytes: entry.sourceBytes,
    bytes: entry.bytes,
    sha256: entry.sha256,
    archive: entry.archive,
    createdAt: entry.createdAt,
    verified: true,
  };
}

/** An archive that did not verify (or whose run was cancelled after the rename) is not kept; one the catalog lists is. */
async function discardUnlisted(catalog: BackupCatalog, serverId: string, recordId: string, out: Output): Promise<void> {
  await rm(out.partial, { force: true });
  if (!(await catalog.get(serverId, recordId))) await rm(out.archive, { force: true });
}
