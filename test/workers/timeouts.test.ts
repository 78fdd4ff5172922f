import { existsSync, mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, tmpDir, waitForJob } from '../helpers.js';

const OPS = auth({ sub: 'alice', tenant: 'ops', scope: 'jobs:read jobs:write' });

/** Accepts connections and never says a word: a TLS probe of it waits for its handshake until the probe's own timeout. */
function silentServer(): Promise<net.Server> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('timeouts: every kind of job stops its work when its run outlasts timeoutSec', () => {
  let app: FastifyInstance;
  let silent: net.Server;
  let backupDir: string;

  beforeAll(async () => {
    silent = await silentServer();
    const port = (silent.address() as net.AddressInfo).port;
    const source = tmpDir('timeout-src');
    mkdirSync(source, { recursive: true });
    writeFileSync(path.join(source, 'small.txt'), 'hello');
    // 64 GiB of holes: reading and compressing it takes minutes, writing it takes no disk.
    const huge = path.join(source, 'huge.img');
    writeFileSync(huge, '');
    truncateSync(huge, 64 * 1024 ** 3);
    backupDir = tmpDir('timeout-backups');
    app = await makeApp({
      env: { BACKUP_DIR: backupDir },
      servers: [
        { id: 'hush', tenant: 'ops', host: '127.0.0.1', scan: { ports: [port], timeoutMs: 60_000 } },
        { id: 'hush-1s', tenant: 'ops', host: '127.0.0.1', scan: { ports: [port], timeoutMs: 60_000, timeoutSec: 1 } },
        { id: 'big', tenant: 'ops', host: '127.0.0.1', backup: { paths: [source], timeoutSec: 1 } },
      ],
    });
  });
  afterAll(async () => {
    await app?.close();
    silent?.close();
  });

  const submit = async (payload: object) => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: OPS, payload });
    expect(res.statusCode, res.body).toBe(202);
    return res.json().data.jobId as string;
  };

  it('a scan past the job\'s own timeoutSec fails saying so, and is retried like any failure', async () => {
    const id = await submit({ type: 'scan:full', data: { serverId: 'hush' }, options: { timeoutSec: 1, attempts: 2, backoffMs: 100 } });
    const job = await waitForJob(app, id, ['failed'], 20_000);
    expect(job.failedReason).toBe('timed out after 1s (timeoutSec) and was stopped');
    expect(job.attempts).toBe(2);
    const logs = (await app.inject({ url: `/api/jobs/${id}/logs`, headers: OPS })).json().data.lines as string[];
    expect(logs.filter((l) => l.includes('timed out after 1s'))).toHaveLength(2);
  });

  it('takes the inventory\'s timeoutSec for the kind when the job sets none', async () => {
    const id = await submit({ type: 'scan:full', data: { serverId: 'hush-1s' }, options: { attempts: 1 } });
    const job = await waitForJob(app, id, ['failed'], 20_000);
    expect(job.failedReason).toBe('timed out after 1s (timeoutSec) and was stopped');
  });

  it('a backup past its timeout stops reading and writing and leaves no archive behind', async () => {
    const id = await submit({ type: 'backup:manual', data: { serverId: 'big', compression: true }, options: { attempts: 1 } });
    const job = await waitForJob(app, id, ['failed'], 20_000);
    expect(job.failedReason).toBe('timed out after 1s (timeoutSec) and was stopped');
    const dir = path.join(backupDir, 'big');
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('refuses a timeoutSec out of bounds with a 400', async () => {
    for (const timeoutSec of [0, 86_401, 1.5]) {
      const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: OPS, payload: { type: 'scan:quick', data: { serverId: 'hush' }, options: { timeoutSec } } });
      expect(res.statusCode, String(timeoutSec)).toBe(400);
      expect(res.body).toContain('timeoutSec');
    }
  });
});
