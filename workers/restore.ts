import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, realpath, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UnrecoverableError } from 'bullmq';
import { x as extractTar } from 'tar';
import { ArchiveKeyError, decryptFile, keyId, sha256File } from '../src/backups/archive-crypto.js';
import type { BackupCatalog, BackupEntry } from '../src/backups/catalog.js';
import type { ProgressReporter } from './progress.js';
import type { Processor } from './run-job.js';
import type { RestoreData, RestoreResult } from '../src/jobs/index.js';
import { readManifest } from './backup.js';

/** Every regular file and link under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(path.relative(dir, path.join(e.parentPath, e.name)));
  }
  return out;
}

/**
 * backup:restore — extracts a backup into a new directory
 * DATA_DIR/restores/<serverId>-<restoreId> (paths inside are the source's
 * absolute paths without the leading `/`). An incremental backup is restored
 * with what it builds on: the full backup first, then each incremental one up
 * to it, then the files gone by then are removed, so the directory holds the
 * source exactly as that backup saw it.
 * Each archive is checked against its recorded SHA-256 first, and an encrypted
 * one against the configured key: a mismatch or a wrong key fails the job at
 * once (no retries: they could not help). The extraction goes to a temporary
 * directory renamed when complete; a failed or cancelled restore leaves nothing.
 */
export const processRestore: Processor<RestoreData, RestoreResult> = async ({ job, input, server, recordId, progress, jobLog, signal, deps }) => {
  const key = deps.config.backupKey;
  const chain = await chainTo(deps.catalog!, server.id, input.backupId);
  const target = chain[chain.length - 1]!;
  for (const e of chain) await verifyArchive(e, key, signal);
  jobLog.step(`verified ${chain.length} archive(s): ${chain.map((e) => `${e.backupId} (${e.type})`).join(' then ')}`);
  progress.milestone(30);

  const directory = path.join(deps.config.restoreDir, `${server.id}-${recordId}`);
  const partial = `${directory}.partial`;
  await startOver(deps.config.restoreDir, directory, partial);
  progress.milestone(40);

  try {
    await extractChain(chain, partial, key, progress, signal);
    if (chain.length > 1) await removeDeleted(target, partial, key);
    await rename(partial, directory);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    if (err instanceof ArchiveKeyError) throw new UnrecoverableError(err.message);
    throw err;
  }
  const { files, bytes } = await measure(directory);
  jobLog.step(`restored ${files} files (${bytes} bytes) into ${directory}`);
  progress.milestone(90);
  const result: RestoreResult = { restoreId: recordId, serverId: server.id, backupId: target.backupId, chain: chain.map((e) => e.backupId), directory, files, bytes };
  if (deps.restores) {
    const beyond = await deps.restores.add({ ...result, jobId: job.id!, host: deps.restores.host, createdAt: new Date().toISOString() }, deps.config.restoreRetention);
    await deps.restores.deletePending();
    if (beyond.length > 0) jobLog.step(`retention (RESTORE_RETENTION=${deps.config.restoreRetention}): deleted ${beyond.map((e) => e.restoreId).join(', ')}`);
  }
  return result;
};

/** The backups to extract for `backupId`, oldest (a full backup) first, it last: an incremental archive holds only what changed. */
async function chainTo(catalog: BackupCatalog, serverId: string, backupId: string): Promise<BackupEntry[]> {
  const target = await catalog.get(serverId, backupId);
  if (!target) throw new UnrecoverableError(`server ${serverId} has no backup ${backupId} (any more: retention may have deleted it)`);
  const chain: BackupEntry[] = [target];
  while (chain[0]!.baseId) {
    const base = await catalog.get(serverId, chain[0]!.baseId);
    if (!base) throw new UnrecoverableError(`backup ${chain[0]!.backupId} builds on backup ${chain[0]!.baseId}, which no longer exists`);
    chain.unshift(base);
  }
  return chain;
}

/** Checked before any extraction, so that a damaged archive or a wrong key leaves nothing half restored. */
async function verifyArchive(e: BackupEntry, key: Buffer | undefined, signal: AbortSignal): Promise<void> {
  if (e.encrypted) {
    if (!key) throw new UnrecoverableError(`backup ${e.backupId} is encrypted and BACKUP_ENCRYPTION_KEY is not configured`);
    if (e.keyId !== keyId(key)) {
      throw new UnrecoverableError(`wrong key: backup ${e.backupId} was encrypted with key id ${e.keyId}, BACKUP_ENCRYPTION_KEY has key id ${keyId(key)}`);
    }
  }
  let sha: string;
  try {
    sha = await sha256File(e.archive, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    throw new UnrecoverableError(`cannot read archive ${e.archive} of backup ${e.backupId}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (sha !== e.sha256) {
    throw new UnrecoverableError(`checksum mismatch: archive ${path.basename(e.archive)} of backup ${e.backupId} has SHA-256 ${sha}, ${e.sha256} was recorded; the file was altered or damaged`);
  }
  if (e.encrypted) {
    // Authenticate the whole archive before extracting a byte of it.
    try {
      for await (const _ of await decryptFile(e.archive, key!)) void _;
    } catch (err) {
      if (err instanceof ArchiveKeyError) throw new UnrecoverableError(err.message);
      throw err;
    }
  }
}

/** A run again after a crash starts over. */
async function startOver(root: string, directory: string, partial: string): Promise<void> {
  await mkdir(root, { recursive: true });
  await rm(partial, { recursive: true, force: true });
  await rm(directory, { recursive: true, force: true });
  await mkdir(partial, { mode: 0o700 });
}

/** Each archive of the chain over the one before; progress 40..89 follows the archive bytes read. */
async function extractChain(
  chain: readonly BackupEntry[],
  into: string,
  key: Buffer | undefined,
  progress: ProgressReporter,
  signal: AbortSignal,
): Promise<void> {
  const total = chain.reduce((n, e) => n + e.bytes, 0);
  let read = 0;
  for (const e of chain) {
    // An incremental backup of an unchanged source holds no file.
    if (e.files === 0) continue;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        read += chunk.length;
        progress.band(40, 89, total ? read / total : 1);
        done(null, chunk);
      },
    });
    const source: Readable = e.encrypted ? await decryptFile(e.archive, key!) : createReadStream(e.archive);
    // node-tar (strict) refuses a symlink to an absolute path, and would otherwise make it relative: such
    // links are set aside and made as they were once the archive is out.
    const absoluteLinks: Array<[string, string]> = [];
    const filter = (entryPath: string, entry: unknown) => {
      const { type, linkpath } = entry as { type?: string; linkpath?: string };
      if (type === 'SymbolicLink' && linkpath && path.isAbsolute(linkpath)) {
        absoluteLinks.push([entryPath, linkpath]);
        return false;
      }
      return true;
    };
    await pipeline(source, counter, extractTar({ cwd: into, strict: true, filter }), { signal });
    for (const [entryPath, target] of absoluteLinks) await restoreLink(into, entryPath, target);
  }
}

/**
 * Make a symlink an archive held, at `entryPath` under `into`: the path must
 * stay inside `into` (no `..`, not absolute, no symlinked folder on the way),
 * as node-tar checks for what it writes itself. The link is made, never followed.
 */
async function restoreLink(into: string, entryPath: string, target: string): Promise<void> {
  const rel = path.normalize(entryPath);
  if (path.isAbsolute(rel) || rel.split(path.sep).includes('..')) throw new UnrecoverableError(`the archive entry "${entryPath}" points outside the restore directory`);
  const at = path.join(into, rel);
  await mkdir(path.dirname(at), { recursive: true });
  const root = await realpath(into);
  const parent = await realpath(path.dirname(at));
  if (parent !== root && !parent.startsWith(root + path.sep)) throw new UnrecoverableError(`the archive entry "${entryPath}" goes through a link out of the restore directory`);
  await rm(at, { force: true });
  await symlink(target, at);
}

/** Extracting never deletes: the files the target backup's source no longer had are still there from the backups before it. */
async function removeDeleted(target: BackupEntry, dir: string, key: Buffer | undefined): Promise<void> {
  const wanted = new Set((await readManifest(target, key)).files.map(([rel]) => rel));
  for (const rel of await filesUnder(dir)) if (!wanted.has(rel)) await rm(path.join(dir, rel), { force: true });
}

async function measure(dir: string): Promise<{ files: number; bytes: number }> {
  const files = await filesUnder(dir);
  let bytes = 0;
  for (const rel of files) bytes += (await lstat(path.join(dir, rel)).catch(() => ({ size: 0 }))).size;
  return { files: files.length, bytes };
}
