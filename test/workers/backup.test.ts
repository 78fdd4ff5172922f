import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { list as listTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_TTL_MS } from '../../src/coordination/server-locks.js';
import { auth, makeApp, tmpDir, waitForJob } from '../helpers.js';
import { redisKeys } from '../../src/redis/keys.js';
import { RestoreCatalog } from '../../src/backups/restores.js';

const H = auth({ tenant: 'ops' });
const KEY_HEX = randomBytes(32).toString('hex');

type Backup = {
  backupId: string;
  jobId: string;
  type: string;
  baseId: string | null;
  compressed: boolean;
  encrypted: boolean;
  files: number;
  skipped: number;
  deleted: number;
  bytes: number;
  sha256: string;
  createdAt: string;
};

/** Every file under `dir` (relative path → content), for comparing a restore with its source. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out[path.relative(dir, path.join(e.parentPath, e.name))] = createHash('sha256').update(readFileSync(path.join(e.parentPath, e.name))).digest('hex');
  }
  return out;
}

describe('backups operators can trust', () => {
  let app: FastifyInstance;
  const source = tmpDir('bk-src');
  const site = path.join(source, 'site');
  const dataDir = tmpDir('bk-data');
  const prefix = `t${randomBytes(6).toString('hex')}`;
  const servers = [
    { id: 'files', tenant: 'ops', host: '127.0.0.1', backup: { paths: [site], exclude: ['*.log'] } },
    { id: 'kept', tenant: 'ops', host: '127.0.0.1', backup: { paths: [path.join(source, 'kept')] } },
    { id: 'locked', tenant: 'ops', host: '127.0.0.1', backup: { paths: [path.join(source, 'kept')] } },
    { id: 'huge', tenant: 'ops', host: '127.0.0.1', backup: { paths: [path.join(source, 'huge')] } },
    { id: 'links', tenant: 'ops', host: '127.0.0.1', backup: { paths: [path.join(source, 'links')] } },
  ];
  // TENANT_MAX_SHARE=1: one tenant may use both backup slots, so only the server lock keeps backups of one server apart.
  const env = { BACKUP_ENCRYPTION_KEY: KEY_HEX, BACKUP_RETENTION: '3', RESTORE_RETENTION: '2', DATA_DIR: dataDir, QUEUE_PREFIX: prefix, TENANT_MAX_SHARE: '1' };

  const backup = async (serverId: string, body: object) => {
    const res = await app.inject({ method: 'POST', url: `/api/servers/${serverId}/backup`, headers: H, payload: body });
    expect(res.statusCode).toBe(202);
    return waitForJob(app, res.json().data.jobId);
  };
  const listBackups = async (serverId: string): Promise<Backup[]> => {
    const res = await app.inject({ url: `/api/servers/${serverId}/backups`, headers: H });
    expect(res.statusCode).toBe(200);
    return res.json().data;
  };
  const restore = async (serverId: string, backupId: string) => {
    const res = await app.inject({ method: 'POST', url: `/api/servers/${serverId}/backups/${backupId}/restore`, headers: H });
    expect(res.statusCode).toBe(202);
    expect(res.json().data).toMatchObject({ backupId, status: 'pending' });
    return waitForJob(app, res.json().data.jobId);
  };
  const expectCompleted = (job: { state: string; failedReason: string | null }) =>
    expect({ state: job.state, failedReason: job.failedReason }).toEqual({ state: 'completed', failedReason: null });

  beforeAll(async () => {
    mkdirSync(path.join(site, 'css'), { recursive: true });
    writeFileSync(path.join(site, 'index.html'), '<h1>v1</h1>');
    writeFileSync(path.join(site, 'css/site.css'), 'body{}');
    writeFileSync(path.join(site, 'about.html'), 'about us');
    writeFileSync(path.join(site, 'old.html'), 'to be deleted');
    writeFileSync(path.join(site, 'blob.bin'), randomBytes(200_000));
    writeFileSync(path.join(site, 'debug.log'), 'excluded');
    mkdirSync(path.join(source, 'kept'));
    writeFileSync(path.join(source, 'kept/a.txt'), 'a');
    mkdirSync(path.join(source, 'links'));
    writeFileSync(path.join(source, 'links/real.txt'), 'r');
    symlinkSync('/etc/hostname', path.join(source, 'links/absolute'));
    symlinkSync('real.txt', path.join(source, 'links/relative'));
    app = await makeApp({ env, servers });
  });
  afterAll(() => app.close());

  it('restores symlinks as they were, one to an absolute path included (node-tar\'s strict mode refused it)', async () => {
    const made = await backup('links', {});
    expectCompleted(made);
    const restored = await restore('links', (made.result as { backupId: string }).backupId);
    expectCompleted(restored);
    const dir = (restored.result as { directory: string }).directory;
    const linkDir = readdirSync(dir, { recursive: true, withFileTypes: true }).find((e) => e.name === 'absolute')!.parentPath;
    expect(readlinkSync(path.join(linkDir, 'absolute'))).toBe('/etc/hostname');
    expect(readlinkSync(path.join(linkDir, 'relative'))).toBe('real.txt');
    expect(readFileSync(path.join(linkDir, 'real.txt'), 'utf8')).toBe('r');
  });

  it('an incremental backup takes only what changed since the last one; the first one is full', async () => {
    const first = await backup('files', { backup_type: 'incremental' });
    expect(first.state).toBe('completed');
    expect(first.result).toMatchObject({ type: 'full', baseId: null, files: 5, skipped: 0, verified: true });

    // Change one file's content, one file's mtime only, add one, delete one.
    writeFileSync(path.join(site, 'index.html'), '<h1>version two</h1>');
    const later = new Date(Date.now() + 60_000);
    utimesSync(path.join(site, 'about.html'), later, later);
    writeFileSync(path.join(site, 'css/new.css'), 'p{}');
    rmSync(path.join(site, 'old.html'));

    const second = await backup('files', { backup_type: 'incremental', compression: false });
    const r = second.result as { type: string; baseId: string; files: number; skipped: number; deleted: number; archive: string };
    expect(r).toMatchObject({ type: 'incremental', baseId: (first.result as { backupId: string }).backupId, files: 3, skipped: 2, deleted: 1 });
    const entries: string[] = [];
    await listTar({ file: r.archive, onReadEntry: (e) => entries.push('/' + e.path) });
    expect(entries.sort()).toEqual([path.join(site, 'about.html'), path.join(site, 'css/new.css'), path.join(site, 'index.html')].sort());

    // Nothing changed: an incremental backup with no files, still listed and restorable.
    const third = await backup('files', { backup_type: 'incremental' });
    expect(third.result).toMatchObject({ type: 'incremental', files: 0, skipped: 5, deleted: 0 });

    // The job's log says what it did.
    const log = (await app.inject({ url: `/api/jobs/${second.id}/logs`, headers: H })).json().data.lines as string[];
    expect(log.some((l) => /collected 5 files/.test(l))).toBe(true);
    expect(log.some((l) => /incremental since backup .*: 3 new or changed, 2 unchanged, 1 deleted/.test(l))).toBe(true);
    expect(log.some((l) => /written .* and verified: sha256 [0-9a-f]{64}/.test(l))).toBe(true);
  });

  it('lists backups newest first with their checksums; another tenant sees none of it', async () => {
    const list = await listBackups('files');
    expect(list.map((b) => b.type)).toEqual(['incremental', 'incremental', 'full']);
    const times = list.map((b) => Date.parse(b.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    for (const b of list) {
      expect(Object.keys(b).sort()).toEqual(
        ['backupId', 'jobId', 'type', 'baseId', 'compressed', 'encrypted', 'files', 'skipped', 'deleted', 'sourceBytes', 'bytes', 'sha256', 'createdAt'].sort(),
      );
      const file = path.join(app.config.backupDir, 'files', `${b.backupId}.tar${b.compressed ? '.gz' : ''}`);
      const bytes = readFileSync(file);
      expect(b.bytes).toBe(bytes.length);
      expect(b.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    const other = await app.inject({ url: '/api/servers/files/backups', headers: auth({ tenant: 'someone-else' }) });
    expect(other.statusCode).toBe(404);
    const restoreOther = await app.inject({ method: 'POST', url: `/api/servers/files/backups/${list[0]!.backupId}/restore`, headers: auth({ tenant: 'someone-else' }) });
    expect(restoreOther.statusCode).toBe(404);
  });

  it('keeps the newest RESTORE_RETENTION restores of a server, lists them, and deletes one through the API', async () => {
    const [made] = await listBackups('links');
    const restores: Array<{ restoreId: string; directory: string }> = [];
    for (let i = 0; i < 3; i++) {
      const job = await restore('links', made!.backupId);
      expectCompleted(job);
      restores.push(job.result as { restoreId: string; directory: string });
    }
    const list = async () => (await app.inject({ url: '/api/servers/links/restores', headers: H })).json().data as Array<{ restoreId: string }>;
    // Four restores of the server so far (the symlink test made one): the two newest are kept, on disk and listed.
    const kept = await list();
    expect(kept.map((r) => r.restoreId)).toEqual([restores[2]!.restoreId, restores[1]!.restoreId]);
    expect(kept[0]).toMatchObject({ backupId: made!.backupId, directory: restores[2]!.directory, host: hostname(), files: 3, chain: [made!.backupId] });
    expect(readdirSync(path.join(dataDir, 'restores')).filter((n) => n.startsWith('links-')).sort()).toEqual(
      [path.basename(restores[1]!.directory), path.basename(restores[2]!.directory)].sort(),
    );
    expect((await app.inject({ url: '/api/servers/links/restores', headers: auth({ tenant: 'someone-else' }) })).statusCode).toBe(404);

    const removal = `/api/servers/links/restores/${restores[1]!.restoreId}`;
    expect((await app.inject({ method: 'DELETE', url: removal, headers: auth({ tenant: 'someone-else' }) })).statusCode).toBe(404);
    const removed = await app.inject({ method: 'DELETE', url: removal, headers: H });
    expect(removed.statusCode).toBe(200);
    expect(removed.json().data).toEqual({ restoreId: restores[1]!.restoreId, removed: true, directory: restores[1]!.directory, host: hostname(), directoryDeleted: true });
    expect(existsSync(restores[1]!.directory)).toBe(false);
    expect((await list()).map((r) => r.restoreId)).toEqual([restores[2]!.restoreId]);
    const again = await app.inject({ method: 'DELETE', url: removal, headers: H });
    expect([again.statusCode, again.json().error.code]).toEqual([404, 'RESTORE_NOT_FOUND']);
  });

  it('a restore on another machine: the API takes it off the list, a process of that machine deletes its directory', async () => {
    const restoreDir = path.join(dataDir, 'restores');
    const directory = path.join(restoreDir, 'links-elsewhere1');
    mkdirSync(directory, { recursive: true });
    const there = new RestoreCatalog(app.redis, prefix, restoreDir, 'machine-b');
    await there.add({ restoreId: 'elsewhere1', jobId: 'backup_x', serverId: 'links', backupId: 'b', chain: ['b'], directory, host: 'machine-b', files: 0, bytes: 0, createdAt: new Date().toISOString() }, 5);
    const removed = await app.inject({ method: 'DELETE', url: '/api/servers/links/restores/elsewhere1', headers: H });
    expect(removed.json().data).toMatchObject({ removed: true, host: 'machine-b', directoryDeleted: false });
    // Not this machine's to delete (here the "other machine" shares the disk, so it is still there)...
    expect(existsSync(directory)).toBe(true);
    // ...until a process of machine-b sweeps.
    expect(await there.deletePending()).toEqual([directory]);
    expect(existsSync(directory)).toBe(false);
    expect(await there.deletePending()).toEqual([]);
  });

  it('restores an incremental backup as the whole tree it saw, into a new directory', async () => {
    const [newest] = await listBackups('files');
    const job = await restore('files', newest!.backupId);
    expectCompleted(job);
    const r = job.result as { directory: string; files: number; chain: string[] };
    expect(path.dirname(r.directory)).toBe(path.join(app.config.dataDir, 'restores'));
    expect(r.chain).toHaveLength(3);
    const restored = tree(path.join(r.directory, path.relative('/', site)));
    const expected = tree(site);
    delete expected['debug.log'];
    expect(restored).toEqual(expected);
    expect(Object.keys(restored)).not.toContain('old.html');
    expect(r.files).toBe(Object.keys(expected).length);
  });

  it('an encrypted backup is unreadable without the key and restores with it', async () => {
    const job = await backup('files', { encryption: true });
    const r = job.result as { archive: string; encrypted: boolean; backupId: string };
    expect(r.encrypted).toBe(true);
    expect(r.archive.endsWith('.tar.gz.enc')).toBe(true);
    const bytes = readFileSync(r.archive);
    expect(bytes.subarray(0, 8).toString()).toBe('JOBSENC1');
    expect(bytes.includes(Buffer.from('version two'))).toBe(false);
    const readable: string[] = [];
    await listTar({ file: r.archive, onReadEntry: (e) => readable.push(e.path) }).catch(() => {});
    expect(readable).toEqual([]);

    const restored = await restore('files', r.backupId);
    expectCompleted(restored);
    const dir = (restored.result as { directory: string }).directory;
    expect(readFileSync(path.join(dir, path.relative('/', site), 'index.html'), 'utf8')).toBe('<h1>version two</h1>');
  });

  it('a restore of an archive that changed on disk fails at once on its checksum and leaves nothing', async () => {
    const job = await backup('kept', { compression: false });
    const { archive, backupId } = job.result as { archive: string; backupId: string };
    const bytes = readFileSync(archive);
    bytes[600] = bytes[600]! ^ 0xff;
    writeFileSync(archive, bytes);
    const failed = await restore('kept', backupId);
    expect(failed.state).toBe('failed');
    expect(failed.failedReason).toMatch(/checksum mismatch: archive .* has SHA-256 [0-9a-f]{64}, [0-9a-f]{64} was recorded/);
    expect(failed.attempts).toBe(1);
    const restores = path.join(app.config.dataDir, 'restores');
    expect(readdirSync(restores).filter((n) => n.startsWith('kept-'))).toEqual([]);
  });

  it('an encrypted archive altered together with its record fails to authenticate', async () => {
    const job = await backup('kept', { encryption: true, compression: false });
    const { archive, backupId } = job.result as { archive: string; backupId: string };
    const bytes = readFileSync(archive);
    bytes[100] = bytes[100]! ^ 0x01;
    writeFileSync(archive, bytes);
    // Someone with Redis access "fixes" the checksum: the GCM tag still catches it.
    const key = redisKeys(prefix).backupEntries('kept');
    const entry = JSON.parse((await app.redis.hget(key, backupId))!);
    entry.sha256 = createHash('sha256').update(bytes).digest('hex');
    await app.redis.hset(key, backupId, JSON.stringify(entry));
    const failed = await restore('kept', backupId);
    expect(failed.state).toBe('failed');
    expect(failed.failedReason).toMatch(/does not authenticate with BACKUP_ENCRYPTION_KEY/);
    expect(readdirSync(path.join(app.config.dataDir, 'restores')).filter((n) => n.startsWith('kept-'))).toEqual([]);
  });

  it('retention keeps the newest BACKUP_RETENTION backups and deletes older archives with their records', async () => {
    const before = await listBackups('kept');
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push(((await backup('kept', {})).result as { backupId: string }).backupId);
    const after = await listBackups('kept');
    expect(after.map((b) => b.backupId)).toEqual([...made].reverse());
    const files = readdirSync(path.join(app.config.backupDir, 'kept'));
    for (const old of before) expect(files.some((f) => f.startsWith(old.backupId))).toBe(false);
    for (const id of made) expect(files.filter((f) => f.startsWith(id))).toHaveLength(2); // archive + file list
    expect((await app.inject({ method: 'POST', url: `/api/servers/kept/backups/${before[0]!.backupId}/restore`, headers: H })).json().error.code).toBe('BACKUP_NOT_FOUND');
  });

  it('retention keeps the full backup that kept incremental backups build on', async () => {
    const full = ((await backup('kept', {})).result as { backupId: string }).backupId;
    for (let i = 0; i < 3; i++) {
      writeFileSync(path.join(source, 'kept', `n${i}.txt`), String(i));
      await backup('kept', { backup_type: 'incremental' });
    }
    const list = await listBackups('kept');
    expect(list.map((b) => b.type)).toEqual(['incremental', 'incremental', 'incremental', 'full']);
    expect(list[3]!.backupId).toBe(full);
    const restored = await restore('kept', list[0]!.backupId);
    expect(Object.keys(tree((restored.result as { directory: string }).directory)).map((f) => path.basename(f)).sort()).toEqual(['a.txt', 'n0.txt', 'n1.txt', 'n2.txt']);
  });

  it('a job run again after a crash leaves one record and no partial file', async () => {
    const first = await backup('kept', {});
    const { backupId } = first.result as { backupId: string };
    const dir = path.join(app.config.backupDir, 'kept');
    // What a process killed mid-write leaves behind.
    writeFileSync(path.join(dir, `${backupId}.tar.gz.partial`), 'half an archive');
    const again = await app.queues.backup.add(
      'backup:manual',
      { tenant: 'ops', requestedBy: 'crash-test', recordId: backupId, input: { serverId: 'kept', backup_type: 'full', compression: true, encryption: false } },
      { jobId: `backup_${'R'.repeat(22)}` },
    );
    const done = await waitForJob(app, again.id!);
    expect(done.state).toBe('completed');
    const list = await listBackups('kept');
    expect(list.filter((b) => b.backupId === backupId)).toHaveLength(1);
    expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    const entry = list.find((b) => b.backupId === backupId)!;
    expect(entry.jobId).toBe(again.id);
    expect(entry.sha256).toBe(createHash('sha256').update(readFileSync(path.join(dir, `${backupId}.tar.gz`))).digest('hex'));
  });

  it('a backup of a server whose lock another job holds waits (delayed), then runs once the lock expires', async () => {
    const lockKey = redisKeys(prefix).serverLock('backup', 'locked');
    // A holder that crashed: nobody renews or releases its lock.
    await app.redis.set(lockKey, 'backup_crashedholder0000000000', 'PX', 1500);
    const res = await app.inject({ method: 'POST', url: '/api/servers/locked/backup', headers: H, payload: {} });
    const jobId = res.json().data.jobId;
    const waiting = await waitForJob(app, jobId, ['delayed']);
    expect(waiting.state).toBe('delayed');
    const log = (await app.inject({ url: `/api/jobs/${jobId}/logs`, headers: H })).json().data.lines as string[];
    expect(log).toContain('[jobs-api] waiting: job backup_crashedholder0000000000 holds the backup lock of server locked; this job runs when it is free');
    const done = await waitForJob(app, jobId, ['completed', 'failed'], LOCK_TTL_MS);
    expect(done.state).toBe('completed');
    expect(done.attempts).toBe(1);
    expect(await app.redis.exists(lockKey)).toBe(0);
  });

  it('two backups of one server never overlap; the second waits its turn', async () => {
    mkdirSync(path.join(source, 'huge'), { recursive: true });
    writeFileSync(path.join(source, 'huge', 'data.bin'), randomBytes(12_000_000));
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await app.inject({ method: 'POST', url: '/api/servers/huge/backup', headers: H, payload: {} });
      ids.push(res.json().data.jobId);
    }
    const jobs = await Promise.all(ids.map((id) => waitForJob(app, id, ['completed', 'failed'], 60_000)));
    expect(jobs.map((j) => j.state)).toEqual(['completed', 'completed']);
    // The work itself, as each backup's record times it (taken after the lock, finished before its release).
    const work = await Promise.all(
      jobs.map(async (j) => {
        const r = await app.redis.hgetall(redisKeys(prefix).record('backup', (j.result as { backupId: string }).backupId));
        return [Date.parse(r.createdAt!), Date.parse(r.finishedAt!)] as const;
      }),
    );
    const [first, second] = work.sort((x, y) => x[0] - y[0]);
    expect(second![0]).toBeGreaterThanOrEqual(first![1]);
    // Two slots were free (TENANT_MAX_SHARE=1): it was the server's lock that made the second one wait.
    const logs = await Promise.all(jobs.map(async (j) => (await app.inject({ url: `/api/jobs/${j.id}/logs`, headers: H })).json().data.lines as string[]));
    expect(logs.flat().some((l) => l.includes('holds the backup lock of server huge'))).toBe(true);
  });

  it('a restore by a process with another key fails with "wrong key", without retries', async () => {
    const job = await backup('kept', { encryption: true });
    const { backupId } = job.result as { backupId: string };
    await app.close();
    // The same Redis and data, run by a process configured with another key.
    app = await makeApp({ env: { ...env, BACKUP_ENCRYPTION_KEY: randomBytes(32).toString('base64') }, servers });
    const failed = await restore('kept', backupId);
    expect(failed.state).toBe('failed');
    expect(failed.failedReason).toMatch(/^wrong key: backup .* was encrypted with key id [0-9a-f]{16}, BACKUP_ENCRYPTION_KEY has key id [0-9a-f]{16}$/);
    expect(failed.attempts).toBe(1);
    expect(readdirSync(path.join(app.config.dataDir, 'restores')).filter((n) => n.endsWith('.partial'))).toEqual([]);
  });
});
