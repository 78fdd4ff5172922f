import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, ftruncateSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, tmpDir, waitForJob } from '../helpers.js';

const H = auth({ tenant: 'ops' });

/** Whether a process runs (a zombie waiting for its parent to reap it does not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An update command that starts a child of its own, prints the child's pid, and runs until killed. */
const node = process.execPath;
const treeCommand = [
  node,
  '-e',
  "const c = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); console.log('CHILD ' + c.pid); setInterval(() => {}, 1000)",
];

describe('cancelling jobs', () => {
  let app: FastifyInstance;
  let apiOnly: FastifyInstance;
  let silent: net.Server;
  const prefix = `t${randomBytes(6).toString('hex')}`;
  const source = tmpDir('cancel-src');
  const dataDir = tmpDir('cancel-data');

  beforeAll(async () => {
    // Accepts connections and never says a word: a TLS handshake with it waits for the timeout.
    silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    // A large sparse file: reading and compressing it takes long enough to cancel the backup halfway.
    mkdirSync(path.join(source, 'big'));
    const fd = openSync(path.join(source, 'big', 'disk.img'), 'w');
    ftruncateSync(fd, 16 * 1024 ** 3);
    closeSync(fd);
    const servers = [
      { id: 'upd-tree', tenant: 'ops', host: '127.0.0.1', update: { command: treeCommand, timeoutSec: 120 } },
      { id: 'upd-timeout', tenant: 'ops', host: '127.0.0.1', update: { command: treeCommand, timeoutSec: 1 } },
      { id: 'big', tenant: 'ops', host: '127.0.0.1', backup: { paths: [path.join(source, 'big')] } },
      { id: 'slow-tls', tenant: 'ops', host: '127.0.0.1', scan: { ports: [(silent.address() as net.AddressInfo).port], timeoutMs: 60_000 } },
      { id: 'quick', tenant: 'ops', host: '127.0.0.1', scan: { ports: [(silent.address() as net.AddressInfo).port], timeoutMs: 1000 } },
    ];
    const env = { QUEUE_PREFIX: prefix, DATA_DIR: dataDir };
    app = await makeApp({ env, servers });
    // A second API process without workers, on the same Redis: its cancel must reach the worker above.
    apiOnly = await makeApp({ env: { ...env, WORKERS: 'off' }, servers });
  });
  afterAll(async () => {
    await apiOnly.close();
    await app.close();
    silent.close();
  });

  const enqueue = async (url: string, payload: object = {}) => {
    const res = await app.inject({ method: 'POST', url, headers: H, payload });
    expect(res.statusCode).toBe(202);
    return res.json().data.jobId as string;
  };
  const cancel = (jobId: string, via = app, headers = H) => via.inject({ method: 'POST', url: `/api/jobs/${jobId}/cancel`, headers });
  const logLines = async (jobId: string) => (await app.inject({ url: `/api/jobs/${jobId}/logs`, headers: H })).json().data.lines as string[];

  it('a running update is stopped with its whole process tree, fails as "cancelled", and is not retried', async () => {
    const jobId = await enqueue('/api/servers/upd-tree/update', { options: { attempts: 3 } });
    let child = 0;
    await until('the command to start its child', async () => {
      const line = (await logLines(jobId)).find((l) => l.startsWith('CHILD '));
      child = line ? Number(line.slice(6)) : 0;
      return child > 0;
    });
    expect(alive(child)).toBe(true);

    const res = await cancel(jobId);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ jobId, outcome: 'cancelled', job: { state: 'cancelled', failedReason: 'cancelled', attempts: 1 } });
    await until('the child to be gone', () => !alive(child), 5000);

    await new Promise((r) => setTimeout(r, 300));
    const after = await waitForJob(app, jobId);
    expect(after).toMatchObject({ state: 'cancelled', failedReason: 'cancelled', attempts: 1 });
    expect(await logLines(jobId)).toContain('[jobs-api] cancelled: the work was stopped');
    // A state of its own: listed under cancelled, not failed; counted apart; never a dead letter.
    const listed = async (query: string) => ((await app.inject({ url: `/api/jobs?${query}&limit=100`, headers: H })).json().data.jobs as Array<{ id: string }>).map((j) => j.id);
    expect(await listed('queue=update&state=cancelled')).toContain(jobId);
    expect(await listed('queue=update&state=failed')).not.toContain(jobId);
    const counts = (await app.inject({ url: '/api/metrics/queues', headers: auth({ scope: 'metrics:read' }) })).json().data.update;
    expect(counts.cancelled).toBeGreaterThanOrEqual(1);
    const deadLetters = (await app.inject({ url: '/api/dead-letters?queue=update&limit=100', headers: H })).json().data.jobs as Array<{ id: string }>;
    expect(deadLetters.map((j) => j.id)).not.toContain(jobId);
    const scrape = (await app.inject({ url: '/metrics', headers: auth({ scope: 'metrics:read' }) })).body;
    expect(scrape).toMatch(/^queue_cancelled_total\{queue="update",type="update:server"\} [1-9]/m);

    // Cancelling a finished job is a conflict; so is any other tenant's attempt a 404.
    const again = await cancel(jobId);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('JOB_FINISHED');
    expect((await cancel(jobId, app, auth({ tenant: 'someone-else' }))).statusCode).toBe(404);
    // And a cancelled job can be retried like any failed one (the cancel does not stick to it).
    const retried = await app.inject({ method: 'POST', url: `/api/jobs/${jobId}/retry`, headers: H });
    expect(retried.statusCode).toBe(200);
    await waitForJob(app, jobId, ['active']);
    expect((await cancel(jobId)).json().data.outcome).toBe('cancelled');
  });

  it('at its timeout an update\'s whole process tree is killed and the reason names the timeout', async () => {
    const jobId = await enqueue('/api/servers/upd-timeout/update', { options: { attempts: 1 } });
    const job = await waitForJob(app, jobId);
    expect(job.failedReason).toMatch(/^update command timed out after 1s and was killed/);
    const child = Number((await logLines(jobId)).find((l) => l.startsWith('CHILD '))!.slice(6));
    await until('the child to be gone', () => !alive(child), 5000);
  });

  it('a running backup is aborted and leaves no archive, partial file or listing', async () => {
    const jobId = await enqueue('/api/servers/big/backup');
    await until('the backup to be archiving', async () => ((await app.jobs.store.get(jobId, undefined))?.progress ?? 0) > 40, 20_000);
    const res = await cancel(jobId);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ outcome: 'cancelled', job: { state: 'cancelled', failedReason: 'cancelled' } });
    expect(readdirSync(path.join(app.config.backupDir, 'big'))).toEqual([]);
    expect((await app.inject({ url: '/api/servers/big/backups', headers: H })).json().data).toEqual([]);
  });

  it('a running scan is aborted through an API process that runs no workers', async () => {
    const jobId = await enqueue('/api/servers/slow-tls/scan', { scan_type: 'full' });
    // The port is open; the TLS handshake then waits (up to 60 s) for an answer that never comes.
    await until('the scan to be probing', async () => ((await logLines(jobId)).some((l) => /resolves to/.test(l))));
    const started = Date.now();
    const res = await cancel(jobId, apiOnly);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toMatchObject({ outcome: 'cancelled', job: { state: 'cancelled', failedReason: 'cancelled', attempts: 1 } });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a waiting or delayed job is removed from its queue', async () => {
    const jobId = await enqueue('/api/servers/quick/scan', { options: { delay: 60_000 } });
    expect((await app.jobs.store.get(jobId, undefined))?.state).toBe('delayed');
    const res = await cancel(jobId);
    expect(res.statusCode).toBe(200);
    expect(res.json().data).toEqual({ jobId, outcome: 'removed', job: null });
    expect((await app.inject({ url: `/api/jobs/${jobId}`, headers: H })).statusCode).toBe(404);
    expect((await cancel(jobId)).statusCode).toBe(404);
  });
});
