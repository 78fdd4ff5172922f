import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEntry, waitForOutput, type Run } from '../processes.js';
import { tmpDir } from '../tmp.js';
import { startSentinelSetup, type SentinelSetup } from '../topologies.js';

const UPDATES = 150;
const SCANS = 150;
const SERVERS = 15;

type Api = { run: Run; base: string };
type Job = { id: string; state: string; result: unknown };

/**
 * The product as a team that outgrew one box runs it: two API processes (WORKERS=off) and two worker
 * processes (npm run worker), all on a master + replica + three Sentinels that the suite starts itself.
 */
describe('two API and two worker processes behind Redis Sentinel', () => {
  let setup: SentinelSetup;
  const dir = tmpDir('sentinel-procs');
  const effects = path.join(dir, 'effects.log');
  const runs: Run[] = [];
  const apis: Api[] = [];
  const workers: Run[] = [];
  let token = '';
  let acmeToken = '';

  const servers = [
    ...Array.from({ length: SERVERS }, (_, i) => ({
      id: `host-${i}`,
      tenant: 'ops',
      host: '127.0.0.1',
      // The side effect to count: one line per run of the update command.
      update: { command: ['/bin/sh', '-c', `echo host-${i} >> ${effects}`] },
      scan: { ports: [1], timeoutMs: 200 },
    })),
    { id: 'slow', tenant: 'ops', host: '127.0.0.1', update: { command: [process.execPath, '-e', "setTimeout(() => console.log('slow done'), 4000)"], timeoutSec: 60 } },
    // Each run writes when its work starts and ends, so the test sees how many ran at once.
    ...['a', 'b', 'c'].map((x) => ({
      id: `acme-${x}`,
      tenant: 'acme',
      host: '127.0.0.1',
      update: {
        command: [
          process.execPath,
          '-e',
          `const fs = require('fs'); fs.appendFileSync(${JSON.stringify(path.join(dir, 'acme.log'))}, 'start ' + Date.now() + '\\n'); setTimeout(() => fs.appendFileSync(${JSON.stringify(path.join(dir, 'acme.log'))}, 'end ' + Date.now() + '\\n'), 1500)`,
        ],
      },
    })),
  ];

  const env = () => ({
    REDIS_SENTINELS: setup.sentinels,
    REDIS_SENTINEL_NAME: setup.name,
    JWT_SECRET: 'sentinel-processes-secret-that-is-long-enough',
    SERVERS_FILE: path.join(dir, 'servers.json'),
    DATA_DIR: dir,
    WORKER_LOCK_MS: '2000',
    LOG_LEVEL: 'info',
  });
  const call = async (api: Api, method: string, url: string, bearer = token): Promise<{ status: number; body: { data?: unknown; error?: { code: string } } }> => {
    const res = await fetch(`${api.base}${url}`, { method, headers: { authorization: `Bearer ${bearer}` } });
    return { status: res.status, body: (await res.json()) as never };
  };
  const job = async (id: string, api = apis[0]!) => (await call(api, 'GET', `/api/jobs/${id}`)).body.data as Job;
  const enqueue = async (api: Api, url: string) => {
    const res = await call(api, 'POST', url);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return (res.body.data as { jobId: string }).jobId;
  };
  const startWorker = async () => {
    const w = startEntry('workers/main.ts', env());
    runs.push(w);
    workers.push(w);
    await waitForOutput(w, /worker process started/, 30_000);
    return w;
  };

  beforeAll(async () => {
    setup = await startSentinelSetup();
    writeFileSync(path.join(dir, 'servers.json'), JSON.stringify({ servers }));
    for (let i = 0; i < 2; i++) {
      const run = startEntry('src/main.ts', { ...env(), WORKERS: 'off' });
      runs.push(run);
      const port = (await waitForOutput(run, /Server listening at http:\/\/127\.0\.0\.1:(\d+)/, 30_000))[1];
      apis.push({ run, base: `http://127.0.0.1:${port}` });
    }
    // The JWT secret is given, so no token is printed: sign one the way `npm run token` does.
    const { signToken } = await import('../../src/http/auth.js');
    token = signToken({ sub: 'ops', tenant: 'ops', scope: 'jobs:read jobs:write' }, { algorithm: 'HS256', key: env().JWT_SECRET }, 3600);
    acmeToken = signToken({ sub: 'acme', tenant: 'acme', scope: 'jobs:read jobs:write' }, { algorithm: 'HS256', key: env().JWT_SECRET }, 3600);
    await startWorker();
    await startWorker();
  }, 120_000);
  afterAll(async () => {
    for (const r of runs) r.child.kill('SIGKILL');
    await setup?.stop();
  });

  it(`runs ${UPDATES + SCANS} jobs enqueued through both APIs exactly once each`, async () => {
    const ids: string[] = [];
    const sends: Array<Promise<string>> = [];
    for (let i = 0; i < UPDATES; i++) sends.push(enqueue(apis[i % 2]!, `/api/servers/host-${i % SERVERS}/update`));
    for (let i = 0; i < SCANS; i++) sends.push(enqueue(apis[(i + 1) % 2]!, `/api/servers/host-${i % SERVERS}/scan`));
    for (let i = 0; i < sends.length; i += 50) ids.push(...(await Promise.all(sends.slice(i, i + 50))));
    expect(new Set(ids).size).toBe(UPDATES + SCANS);

    const pending = new Set(ids);
    const deadline = Date.now() + 120_000;
    while (pending.size > 0 && Date.now() < deadline) {
      const page = [...pending].slice(0, 50);
      const states = await Promise.all(page.map((id) => job(id, apis[1])));
      states.forEach((j, k) => {
        expect(j.state, `job ${page[k]}`).not.toBe('failed');
        if (j.state === 'completed') pending.delete(page[k]!);
      });
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(pending.size, `${pending.size} jobs did not complete`).toBe(0);
    const lines = readFileSync(effects, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(UPDATES);
    for (let i = 0; i < SERVERS; i++) expect(lines.filter((l) => l === `host-${i}`)).toHaveLength(UPDATES / SERVERS);
  }, 180_000);

  it('answers a long poll and cancels through the API process that did not take the job', async () => {
    const polled = await enqueue(apis[0]!, '/api/servers/host-0/update');
    const waited = (await call(apis[1]!, 'GET', `/api/jobs/${polled}?waitMs=20000`)).body.data as Job;
    expect(waited.state).toBe('completed');

    const slow = await enqueue(apis[0]!, '/api/servers/slow/update');
    for (let i = 0; i < 100 && (await job(slow)).state !== 'active'; i++) await new Promise((r) => setTimeout(r, 100));
    const cancelled = await call(apis[1]!, 'POST', `/api/jobs/${slow}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.data).toMatchObject({ outcome: 'cancelled', job: { state: 'failed' } });
  }, 60_000);

  it('holds a tenant\'s fair share across both worker processes', async () => {
    // The update queue runs one job at a time per process: two processes, and a tenant may use half of that.
    const ids: string[] = [];
    for (const x of ['a', 'b', 'c']) {
      const res = await call(apis[0]!, 'POST', `/api/servers/acme-${x}/update`, acmeToken);
      expect(res.status).toBe(202);
      ids.push((res.body.data as { jobId: string }).jobId);
    }
    const acmeJob = async (id: string) => (await call(apis[1]!, 'GET', `/api/jobs/${id}`, acmeToken)).body.data as Job;
    for (const id of ids) {
      for (let i = 0; i < 300 && (await acmeJob(id)).state !== 'completed'; i++) await new Promise((r) => setTimeout(r, 100));
      expect((await acmeJob(id)).state).toBe('completed');
    }
    // At most one of the tenant's updates worked at any moment, though two worker processes were free.
    let running = 0;
    let most = 0;
    const events = readFileSync(path.join(dir, 'acme.log'), 'utf8').trim().split('\n').map((l) => l.split(' ') as ['start' | 'end', string]);
    for (const [what] of events.sort((a, b) => Number(a[1]) - Number(b[1]) || (a[0] === 'end' ? -1 : 1))) {
      running += what === 'start' ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(events).toHaveLength(6);
    expect(most).toBe(1);
  }, 90_000);

  it('a job whose worker process is killed (SIGKILL) mid-job is finished by the other', async () => {
    const slow = await enqueue(apis[0]!, '/api/servers/slow/update');
    for (let i = 0; i < 100 && (await job(slow)).state !== 'active'; i++) await new Promise((r) => setTimeout(r, 100));
    // Whichever worker runs it says so in its log; kill that one.
    const holder = await (async () => {
      for (let i = 0; i < 100; i++) {
        const found = workers.find((w) => w.child.exitCode === null && w.out().includes(slow));
        if (found) return found;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no worker logged job ${slow}`);
    })();
    holder.child.kill('SIGKILL');
    const deadline = Date.now() + 60_000;
    let now = await job(slow);
    while (now.state !== 'completed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      now = await job(slow);
    }
    expect(now.state).toBe('completed');
    expect((now.result as { outputTail: string[] }).outputTail).toEqual(['slow done']);
  }, 90_000);
});
