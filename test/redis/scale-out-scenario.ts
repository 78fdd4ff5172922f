import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEntry, waitForOutput, type Run } from '../processes.js';
import { tmpDir } from '../tmp.js';

/** A Redis the product can be pointed at: the env that names it (instead of REDIS_URL), its key count, how to stop it. */
export type Topology = { env: Record<string, string>; keys(): Promise<number>; stop(): Promise<void> };

const UPDATES = 200;
const SCANS = 200;
const BACKUPS = 200;
const SERVERS = 20;

type Api = { run: Run; base: string };
type Job = { id: string; state: string; result: unknown; failedReason?: string | null };
type Sse = { event: string; data?: unknown };

/** Read a job's event stream until the server ends it (or `timeoutMs` passes); `events` fills as they arrive. */
function watchEvents(url: string, bearer: string, timeoutMs: number): { events: Sse[]; status: () => number | undefined; ended: Promise<Sse[]> } {
  const events: Sse[] = [];
  let status: number | undefined;
  const ended = new Promise<Sse[]>((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${bearer}` } }, (res) => {
      status = res.statusCode;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const ev: Sse = { event: 'message' };
          for (const line of buf.slice(0, cut).split('\n')) {
            if (line.startsWith('event: ')) ev.event = line.slice(7);
            else if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
          }
          buf = buf.slice(cut + 2);
          if (ev.data !== undefined) events.push(ev);
        }
      });
      res.on('end', () => resolve(events));
    });
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    req.on('close', () => {
      clearTimeout(timer);
      resolve(events);
    });
    req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
  });
  return { events, status: () => status, ended };
}

/** Every file under `dir`, recursively (absolute paths). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

/**
 * The product as a team that outgrew one box runs it: two API processes (WORKERS=off) and two worker
 * processes (npm run worker), all on the Redis topology `start` gives (Sentinels, a Cluster...).
 */
export function describeScaleOut(title: string, start: () => Promise<Topology>): void {
  describe(title, () => {
    let topology: Topology | undefined;
    const dir = tmpDir('scale-out');
    const effects = path.join(dir, 'effects.log');
    const source = path.join(dir, 'source');
    const backupDir = path.join(dir, 'backups');
    const gate = path.join(dir, 'gate');
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
        // The side effects to count: one line per run of the update command, one archive per backup.
        update: { command: ['/bin/sh', '-c', `echo host-${i} >> ${effects}`] },
        scan: { ports: [1], timeoutMs: 200 },
        backup: { paths: [source] },
      })),
      { id: 'slow', tenant: 'ops', host: '127.0.0.1', update: { command: [process.execPath, '-e', "setTimeout(() => console.log('slow done'), 4000)"], timeoutSec: 60 } },
      // Ends only once the test opens the gate (a file), so its event stream is open before it completes.
      {
        id: 'gated',
        tenant: 'ops',
        host: '127.0.0.1',
        update: {
          command: [process.execPath, '-e', `const t = setInterval(() => { if (require('fs').existsSync(${JSON.stringify(gate)})) { clearInterval(t); console.log('gate open'); } }, 20)`],
          timeoutSec: 120,
        },
      },
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
      ...topology!.env,
      JWT_SECRET: 'scale-out-processes-secret-that-is-long-enough',
      SERVERS_FILE: path.join(dir, 'servers.json'),
      DATA_DIR: dir,
      // Shared storage, as every worker of a real deployment needs; keep every archive so each can be counted.
      BACKUP_DIR: backupDir,
      BACKUP_RETENTION: '1000',
      WORKER_LOCK_MS: '2000',
      LOG_LEVEL: 'info',
    });
    const call = async (api: Api, method: string, url: string, bearer = token): Promise<{ status: number; body: { data?: unknown; error?: { code: string } } }> => {
      const res = await fetch(`${api.base}${url}`, { method, headers: { authorization: `Bearer ${bearer}` } });
      return { status: res.status, body: (await res.json()) as never };
    };
    const job = async (id: string, api = apis[0]!, bearer = token, query = '') => {
      const res = await call(api, 'GET', `/api/jobs/${id}${query}`, bearer);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.data as Job;
    };
    const enqueue = async (api: Api, url: string) => {
      const res = await call(api, 'POST', url);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return (res.body.data as { jobId: string }).jobId;
    };
    /** The job once it has completed (through `api`); fails the test at once if it fails, or at `deadline`. */
    const completed = async (id: string, deadline: number, api = apis[1]!) => {
      for (;;) {
        const j = await job(id, api);
        expect(j.state, `job ${id}: ${j.failedReason ?? ''}`).not.toBe('failed');
        if (j.state === 'completed') return j;
        expect(Date.now(), `job ${id} did not complete (${j.state})`).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const startWorker = async () => {
      const w = startEntry('workers/main.ts', env());
      runs.push(w);
      workers.push(w);
      await waitForOutput(w, /worker process started/, 30_000);
      return w;
    };

    beforeAll(async () => {
      topology = await start();
      mkdirSync(source);
      writeFileSync(path.join(source, 'index.html'), '<h1>hello</h1>');
      writeFileSync(path.join(source, 'app.conf'), 'listen 80;');
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
      await topology?.stop();
    });

    it(`runs ${UPDATES + SCANS + BACKUPS} jobs of the three queues enqueued through both APIs exactly once each, and streams a job's events through the other API`, async () => {
      const deadline = Date.now() + 240_000;
      // Its stream is open before it can end: the completion event comes from a worker, through Redis, to the other API.
      const gated = await enqueue(apis[0]!, '/api/servers/gated/update');
      // The processes use the topology under test, not a Redis of their own.
      expect(await topology!.keys(), 'keys in the Redis under test').toBeGreaterThan(0);
      const stream = watchEvents(`${apis[1]!.base}/api/jobs/${gated}/events`, token, 240_000);
      for (let i = 0; i < 100 && stream.events.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(stream.events[0], `GET /api/jobs/${gated}/events answered ${stream.status()}`).toMatchObject({ event: 'snapshot', data: { id: gated } });
      expect((stream.events[0]!.data as Job).state).not.toBe('completed');
      writeFileSync(gate, '');

      const sends: Array<Promise<string>> = [];
      for (let i = 0; i < UPDATES; i++) sends.push(enqueue(apis[i % 2]!, `/api/servers/host-${i % SERVERS}/update`));
      for (let i = 0; i < SCANS; i++) sends.push(enqueue(apis[(i + 1) % 2]!, `/api/servers/host-${i % SERVERS}/scan`));
      for (let i = 0; i < BACKUPS; i++) sends.push(enqueue(apis[i % 2]!, `/api/servers/host-${i % SERVERS}/backup`));
      const ids = await Promise.all(sends);
      expect(new Set(ids).size).toBe(UPDATES + SCANS + BACKUPS);
      const backupIds = ids.slice(UPDATES + SCANS);

      const done: Job[] = [];
      for (const id of ids) done.push(await completed(id, deadline));

      // Updates: one line per job, as many for each server as it was sent.
      const lines = readFileSync(effects, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(UPDATES);
      for (let i = 0; i < SERVERS; i++) expect(lines.filter((l) => l === `host-${i}`)).toHaveLength(UPDATES / SERVERS);

      // Backups: one archive per job, each where its result says, listed once in its server's catalog...
      const archives = done.slice(UPDATES + SCANS).map((j) => (j.result as { archive: string }).archive);
      expect(new Set(archives).size).toBe(BACKUPS);
      const onDisk = filesUnder(backupDir);
      expect(onDisk.filter((f) => f.endsWith('.partial'))).toEqual([]);
      expect(onDisk.filter((f) => /\.tar(\.gz)?$/.test(f)).sort()).toEqual([...archives].sort());
      const listed: string[] = [];
      for (let i = 0; i < SERVERS; i++) {
        const res = await call(apis[i % 2]!, 'GET', `/api/servers/host-${i}/backups`);
        listed.push(...(res.body.data as Array<{ jobId: string }>).map((b) => b.jobId));
      }
      expect(listed.sort()).toEqual([...backupIds].sort());
      // ...and written by one run only (a second run would rewrite the same names): the workers log each run.
      const written = workers
        .flatMap((w) => w.out().split('\n'))
        .filter((l) => l.includes('backup written and verified'))
        .map((l) => (JSON.parse(l) as { jobId: string }).jobId);
      expect(written.sort()).toEqual([...backupIds].sort());

      // The stream: the command's output, then the completion, then the end.
      const events = await stream.ended;
      expect(events.filter((e) => e.event === 'log').map((e) => (e.data as { line: string }).line)).toContain('gate open');
      expect(events.at(-1)).toMatchObject({ event: 'completed', data: { id: gated, state: 'completed' } });
    }, 300_000);

    it('answers a long poll and cancels through the API process that did not take the job', async () => {
      const polled = await enqueue(apis[0]!, '/api/servers/host-0/update');
      expect((await job(polled, apis[1], token, '?waitMs=20000')).state).toBe('completed');

      const slow = await enqueue(apis[0]!, '/api/servers/slow/update');
      for (let i = 0; i < 100 && (await job(slow)).state !== 'active'; i++) await new Promise((r) => setTimeout(r, 100));
      const cancelled = await call(apis[1]!, 'POST', `/api/jobs/${slow}/cancel`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.data).toMatchObject({ outcome: 'cancelled', job: { state: 'cancelled' } });
    }, 60_000);

    it('holds a tenant\'s fair share across both worker processes', async () => {
      // The update queue runs one job at a time per process: two processes, and a tenant may use half of that.
      const ids: string[] = [];
      for (const x of ['a', 'b', 'c']) {
        const res = await call(apis[0]!, 'POST', `/api/servers/acme-${x}/update`, acmeToken);
        expect(res.status).toBe(202);
        ids.push((res.body.data as { jobId: string }).jobId);
      }
      const acmeJob = (id: string) => job(id, apis[1], acmeToken);
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
      const now = await completed(slow, Date.now() + 60_000, apis[0]);
      expect((now.result as { outputTail: string[] }).outputTail).toEqual(['slow done']);
    }, 90_000);
  });
}
