import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { startEmbeddedRedis } from '../../src/redis/embedded.js';
import { alive, startEntry, startNpm, waitForOutput, type Run } from '../processes.js';
import { tmpDir } from '../tmp.js';
import { auth, makeApp, redisEnv, waitForJob } from '../helpers.js';

const worker = (env: Record<string, string>): Run => startEntry('workers/main.ts', env);
const api = (env: Record<string, string>): Run => startEntry('src/main.ts', env);

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: { success: boolean; data?: Record<string, unknown>; error?: { code: string } } }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as never };
}

/** Poll `probe` until it answers `status` (a process notices a Redis coming or going within a few seconds). */
async function until(probe: () => Promise<number>, status: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let got = await probe(); got !== status; got = await probe()) {
    if (Date.now() > deadline) throw new Error(`still ${got}, not ${status}, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm run worker (workers/main.ts): the workers alone', () => {
  const runs: Run[] = [];
  afterAll(() => runs.forEach((r) => r.child.kill('SIGKILL')));

  it('exits 2 naming what to set when there is no Redis to work on', async () => {
    const run = worker({ DATA_DIR: tmpDir('worker-alone') });
    runs.push(run);
    expect(await run.exited).toBe(2);
    expect(run.out()).toContain('none of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES is set');
    expect(run.out()).toContain('npm start');
  });

  it('attaches to the embedded Redis of `npm start` on the same DATA_DIR, runs the jobs the API-only process takes, and drains on SIGTERM', async () => {
    const dataDir = tmpDir('worker-embedded');
    const file = path.join(dataDir, 'servers.json');
    const command = [process.execPath, '-e', "setTimeout(() => console.log('updated by ' + process.ppid), 1500)"];
    writeFileSync(file, JSON.stringify({ servers: [{ id: 'slow', host: '127.0.0.1', update: { command } }] }));

    const server = api({ DATA_DIR: dataDir, SERVERS_FILE: file, WORKERS: 'off' });
    runs.push(server);
    const port = Number((await waitForOutput(server, /Jobs API on http:\/\/localhost:(\d+)/))[1]);
    const token = (await waitForOutput(server, /export TOKEN=(\S+)/))[1]!;
    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: `Bearer ${token}` };
    expect((await json(`${base}/ready`)).body.data).toMatchObject({ workers: 'off' });

    const run = worker({ DATA_DIR: dataDir, SERVERS_FILE: file, WORKER_HEALTH_PORT: '0' });
    runs.push(run);
    const health = `http://127.0.0.1:${(await waitForOutput(run, /"healthPort":(\d+)/))[1]}`;
    const workerPid = (await waitForOutput(run, /"pid":(\d+),"hostname"/))[1];
    expect(await json(`${health}/health`)).toMatchObject({ status: 200, body: { success: true, data: { status: 'ok' } } });
    expect(await json(`${health}/ready`)).toMatchObject({ status: 200, body: { data: { status: 'ready', redis: 'ok', workers: 'running' } } });

    const { jobId } = (await json(`${base}/api/servers/slow/update`, { method: 'POST', headers })).body.data as { jobId: string };
    await until(async () => ((await json(`${base}/api/jobs/${jobId}`, { headers })).body.data!.state === 'active' ? 1 : 0), 1);
    run.child.kill('SIGTERM');
    // The job the worker was running finishes before the process exits 0.
    expect(await run.exited).toBe(0);
    const done = (await json(`${base}/api/jobs/${jobId}`, { headers })).body.data as { state: string; result: { outputTail: string[] } };
    expect(done.state).toBe('completed');
    // The update command's parent is the worker process: the API (WORKERS=off) ran nothing.
    expect(done.result.outputTail).toEqual([`updated by ${workerPid}`]);
    expect(run.out()).toContain('"signal":"SIGTERM"');

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('answers /ready 503 with Retry-After while its Redis is gone and 200 once it is back, without a restart; SIGINT and SIGHUP stop it too', async () => {
    const redisDir = path.join(tmpDir('worker-redis'), 'redis');
    let redis = await startEmbeddedRedis(redisDir);
    const env = { REDIS_URL: redis.url, DATA_DIR: tmpDir('worker-ready'), SERVERS_FILE: 'config/servers.json', WORKER_HEALTH_PORT: '0' };
    try {
      const run = worker(env);
      runs.push(run);
      const ready = `http://127.0.0.1:${(await waitForOutput(run, /"healthPort":(\d+)/))[1]}/ready`;
      await until(async () => (await fetch(ready)).status, 200);

      await redis.stop();
      await until(async () => (await fetch(ready)).status, 503);
      const refused = await fetch(ready);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('NOT_READY');
      expect((await fetch(ready.replace('/ready', '/health'))).status).toBe(200);

      redis = await startEmbeddedRedis(redisDir);
      await until(async () => (await fetch(ready)).status, 200);
      run.child.kill('SIGINT');
      expect(await run.exited).toBe(0);

      const again = worker(env);
      runs.push(again);
      await waitForOutput(again, /worker process started/);
      again.child.kill('SIGHUP');
      expect(await again.exited).toBe(0);
    } finally {
      await redis.stop();
    }
  });

  it('`npm run worker` stops, draining, when a supervisor sends SIGTERM to npm alone (npm does not pass it on)', async () => {
    const run = startNpm({ REDIS_URL: inject('redisUrl'), QUEUE_PREFIX: 'npmworker', DATA_DIR: tmpDir('worker-npm') }, 'worker');
    runs.push(run);
    const npm = run.child;
    await waitForOutput(run, /worker process started/);
    const pid = Number((await waitForOutput(run, /"pid":(\d+),"hostname"/))[1]);
    npm.kill('SIGTERM');
    await run.exited;
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
    expect(run.out()).toContain('the process that started this one is gone');
  });

  it('past SHUTDOWN_TIMEOUT_MS stops an active job\'s work and exits 0; the job runs again elsewhere without spending its attempt', async () => {
    const dir = tmpDir('worker-cut');
    const file = path.join(dir, 'servers.json');
    const pidFile = path.join(dir, 'update.pid');
    // The first run would take a minute (and says where it runs); a run after it finishes at once.
    const script = `const fs = require('fs'); if (fs.existsSync(${JSON.stringify(pidFile)})) { console.log('second run'); } else { fs.writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setTimeout(() => {}, 60000); }`;
    const servers = [{ id: 'long', tenant: 'ops', host: '127.0.0.1', update: { command: [process.execPath, '-e', script], timeoutSec: 600 } }];
    writeFileSync(file, JSON.stringify({ servers }));
    const prefix = `cut${process.pid}`;
    const app = await makeApp({ env: { WORKERS: 'off', QUEUE_PREFIX: prefix }, servers });
    try {
      const env = { ...redisEnv(), QUEUE_PREFIX: prefix, DATA_DIR: dir, SERVERS_FILE: file, SHUTDOWN_TIMEOUT_MS: '1000' };
      const first = worker(env);
      runs.push(first);
      await waitForOutput(first, /worker process started/);
      const headers = auth({ tenant: 'ops' });
      const jobId = (await app.inject({ method: 'POST', url: '/api/servers/long/update', headers, payload: { options: { attempts: 1 } } })).json().data.jobId as string;
      await waitForJob(app, jobId, ['active']);
      for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
      const commandPid = Number(readFileSync(pidFile, 'utf8'));

      first.child.kill('SIGTERM');
      // Exit 0: the bound was kept (the last-resort limit, 10 s later, exits 1).
      expect(await first.exited).toBe(0);
      expect(first.out()).toContain('active jobs did not finish in time; stopping their work');
      expect(first.out()).toContain(jobId);
      expect(alive(commandPid)).toBe(false);
      const back = (await app.inject({ url: `/api/jobs/${jobId}`, headers })).json().data;
      expect(back).toMatchObject({ attempts: 0, maxAttempts: 1, failedReason: null });
      expect(['waiting', 'delayed']).toContain(back.state);

      // Its one attempt is still there: another worker process runs it to the end.
      const second = worker(env);
      runs.push(second);
      const done = await waitForJob(app, jobId, ['completed', 'failed']);
      expect(done.state).toBe('completed');
      expect((done.result as { outputTail: string[] }).outputTail).toEqual(['second run']);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('a worker process killed with SIGKILL leaves no update command behind: the command dies with it, and the next attempt ends what it started first', async () => {
    const dir = tmpDir('worker-orphan');
    const file = path.join(dir, 'servers.json');
    const commandPidFile = path.join(dir, 'command.pid');
    const childPidFile = path.join(dir, 'child.pid');
    // The first run starts a child of its own (same process group) and would take a minute; the next one says
    // whether that child still runs.
    const script = [
      "const fs = require('fs');",
      `if (fs.existsSync(${JSON.stringify(commandPidFile)})) {`,
      `  let alive = true; try { process.kill(Number(fs.readFileSync(${JSON.stringify(childPidFile)}, 'utf8')), 0); } catch { alive = false; }`,
      "  console.log(alive ? 'previous still running' : 'previous gone');",
      '} else {',
      `  fs.writeFileSync(${JSON.stringify(commandPidFile)}, String(process.pid));`,
      "  const child = require('child_process').spawn('sleep', ['60'], { stdio: 'ignore' });",
      `  fs.writeFileSync(${JSON.stringify(childPidFile)}, String(child.pid));`,
      '  setTimeout(() => {}, 60000);',
      '}',
    ].join('\n');
    const servers = [{ id: 'box', tenant: 'ops', host: '127.0.0.1', update: { command: [process.execPath, '-e', script], timeoutSec: 600 } }];
    writeFileSync(file, JSON.stringify({ servers }));
    const prefix = `orphan${process.pid}`;
    const app = await makeApp({ env: { WORKERS: 'off', QUEUE_PREFIX: prefix }, servers });
    let commandPid = 0;
    let childPid = 0;
    try {
      const env = { ...redisEnv(), QUEUE_PREFIX: prefix, DATA_DIR: dir, SERVERS_FILE: file, WORKER_LOCK_MS: '2000' };
      const first = worker(env);
      runs.push(first);
      await waitForOutput(first, /worker process started/);
      const headers = auth({ tenant: 'ops' });
      const jobId = (await app.inject({ method: 'POST', url: '/api/servers/box/update', headers, payload: { options: { attempts: 2 } } })).json().data.jobId as string;
      for (let i = 0; i < 100 && !existsSync(childPidFile); i++) await new Promise((r) => setTimeout(r, 100));
      commandPid = Number(readFileSync(commandPidFile, 'utf8'));
      childPid = Number(readFileSync(childPidFile, 'utf8'));

      first.child.kill('SIGKILL');
      // The command goes with its worker process (the kernel tells it: parent-death signal).
      for (let i = 0; i < 50 && alive(commandPid); i++) await new Promise((r) => setTimeout(r, 100));
      expect(alive(commandPid)).toBe(false);

      // The next worker process ends what the command started before the server runs another command.
      const second = worker(env);
      runs.push(second);
      const done = await waitForJob(app, jobId, ['completed', 'failed'], 30_000);
      expect(done.state).toBe('completed');
      expect((done.result as { outputTail: string[] }).outputTail).toEqual(['previous gone']);
      expect(alive(childPid)).toBe(false);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      // Should the product have failed, the test leaves nothing running either.
      for (const pid of [commandPid, childPid]) if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
      await app.close();
    }
  });

  it('a job whose worker process is killed twice runs again within its attempts (a stall counts as one) and completes', async () => {
    const dir = tmpDir('worker-stalls');
    const file = path.join(dir, 'servers.json');
    const runsFile = path.join(dir, 'runs');
    // Runs 1 and 2 would take a minute (and get killed); run 3 ends at once.
    const script = `const fs = require('fs'); fs.appendFileSync(${JSON.stringify(runsFile)}, 'run\\n'); const n = fs.readFileSync(${JSON.stringify(runsFile)}, 'utf8').trim().split('\\n').length; if (n < 3) setTimeout(() => {}, 60000); else console.log('run ' + n);`;
    const servers = [{ id: 'box', tenant: 'ops', host: '127.0.0.1', update: { command: [process.execPath, '-e', script], timeoutSec: 600 } }];
    writeFileSync(file, JSON.stringify({ servers }));
    const prefix = `stalls${process.pid}`;
    const app = await makeApp({ env: { WORKERS: 'off', QUEUE_PREFIX: prefix }, servers });
    const env = { ...redisEnv(), QUEUE_PREFIX: prefix, DATA_DIR: dir, SERVERS_FILE: file, WORKER_LOCK_MS: '2000' };
    const runsSoFar = () => (existsSync(runsFile) ? readFileSync(runsFile, 'utf8').trim().split('\n').length : 0);
    try {
      const headers = auth({ tenant: 'ops' });
      const jobId = (await app.inject({ method: 'POST', url: '/api/servers/box/update', headers, payload: { options: { attempts: 3 } } })).json().data.jobId as string;
      for (const run of [1, 2]) {
        const w = worker(env);
        runs.push(w);
        for (let i = 0; i < 150 && runsSoFar() < run; i++) await new Promise((r) => setTimeout(r, 100));
        expect(runsSoFar()).toBe(run);
        w.child.kill('SIGKILL');
        await w.exited;
      }
      const last = worker(env);
      runs.push(last);
      const done = await waitForJob(app, jobId, ['completed', 'failed'], 30_000);
      expect(done.failedReason).toBeNull();
      expect(done.state).toBe('completed');
      expect((done.result as { outputTail: string[] }).outputTail).toEqual(['run 3']);
      last.child.kill('SIGTERM');
      expect(await last.exited).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('stops within SHUTDOWN_TIMEOUT_MS and a few bounded steps when its Redis is gone, instead of waiting for it for ever', async () => {
    const redisDir = path.join(tmpDir('worker-gone'), 'redis');
    const redis = await startEmbeddedRedis(redisDir);
    const run = worker({ REDIS_URL: redis.url, DATA_DIR: tmpDir('worker-gone-data'), SERVERS_FILE: 'config/servers.json', SHUTDOWN_TIMEOUT_MS: '1000' });
    runs.push(run);
    await waitForOutput(run, /worker process started/);
    await redis.stop();
    // 1 s to drain, then at most 2 s per forced step (close, registry, connections): well within the test's timeout.
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    // Past the bound it says so, forces the close (which, without Redis, may return or be left behind: timing), and ends.
    expect(run.out()).toContain('did not finish in time');
    expect(run.out()).toContain('"msg":"stopped"');
  });
});

