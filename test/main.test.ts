import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, startEntry, startNpm, waitForOutput as waitFor, type Run } from './processes.js';
import { tmpDir } from './tmp.js';

const start = (env: Record<string, string>, opts?: { detached?: boolean }): Run => startEntry('src/main.ts', env, opts);

describe('npm start (src/main.ts)', () => {
  const runs: Run[] = [];
  afterAll(() => runs.forEach((r) => r.child.kill('SIGKILL')));

  it('starts an embedded Redis, prints an admin token, serves, and on SIGTERM stops everything', async () => {
    const dataDir = tmpDir('main');
    const run = start({ DATA_DIR: dataDir, WORKERS: 'on' });
    runs.push(run);
    const redisPid = Number((await waitFor(run, /"redis":"[^"]+","pid":(\d+)/))[1]);
    const port = Number((await waitFor(run, /Jobs API on http:\/\/localhost:(\d+)/))[1]);
    const token = (await waitFor(run, /export TOKEN=(\S+)/))[1];
    expect(alive(redisPid)).toBe(true);

    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    const servers = await fetch(`${base}/api/servers`, { headers: { authorization: `Bearer ${token}` } });
    expect(servers.status).toBe(200);
    const ids = ((await servers.json()) as { data: { servers: Array<{ id: string }> } }).data.servers.map((s) => s.id);
    expect(ids).toContain('localhost');

    const scan = await fetch(`${base}/api/servers/localhost/scan`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scan_type: 'quick' }),
    });
    expect(scan.status).toBe(202);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.out()).toContain('stopped');
    for (let i = 0; i < 50 && alive(redisPid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(redisPid)).toBe(false);

    // The generated secret is kept: a second start accepts the first token, and prints none of its own.
    const again = start({ DATA_DIR: dataDir, WORKERS: 'off' });
    runs.push(again);
    const port2 = Number((await waitFor(again, /Jobs API on http:\/\/localhost:(\d+)/))[1]);
    await waitFor(again, /Make a token with: npm run token/);
    expect(again.out()).not.toContain('export TOKEN=');
    const res = await fetch(`http://127.0.0.1:${port2}/api/jobs`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  });

  it('a server killed with SIGKILL leaves no Redis running: the embedded redis-server stops with it', async () => {
    const run = start({ DATA_DIR: tmpDir('main-kill'), WORKERS: 'off' });
    runs.push(run);
    const redisPid = Number((await waitFor(run, /"redis":"[^"]+","pid":(\d+)/))[1]);
    await waitFor(run, /Jobs API on http:\/\/localhost:(\d+)/);
    run.child.kill('SIGKILL');
    await run.exited;
    for (let i = 0; i < 100 && alive(redisPid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(redisPid)).toBe(false);
  });

  it('on SIGTERM lets an active job finish before it exits', async () => {
    const dataDir = tmpDir('graceful');
    const file = `${dataDir}/servers.json`;
    const fs = await import('node:fs');
    const command = [process.execPath, '-e', "setTimeout(() => console.log('finished the work'), 1500)"];
    fs.writeFileSync(file, JSON.stringify({ servers: [{ id: 'slow', host: '127.0.0.1', update: { command } }] }));
    const run = start({ DATA_DIR: dataDir, SERVERS_FILE: file });
    runs.push(run);
    const port = Number((await waitFor(run, /Jobs API on http:\/\/localhost:(\d+)/))[1]);
    const token = (await waitFor(run, /export TOKEN=(\S+)/))[1];
    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: `Bearer ${token}` };
    const res = await fetch(`${base}/api/servers/slow/update`, { method: 'POST', headers });
    const { jobId } = ((await res.json()) as { data: { jobId: string } }).data;
    for (let i = 0; i < 100; i++) {
      const job = (await (await fetch(`${base}/api/jobs/${jobId}`, { headers })).json()) as { data: { state: string } };
      if (job.data.state === 'active') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);

    const again = start({ DATA_DIR: dataDir, SERVERS_FILE: file, WORKERS: 'off' });
    runs.push(again);
    const port2 = Number((await waitFor(again, /Jobs API on http:\/\/localhost:(\d+)/))[1]);
    const job = (await (await fetch(`http://127.0.0.1:${port2}/api/jobs/${jobId}`, { headers })).json()) as { data: { state: string; result: { outputTail: string[] } } };
    expect(job.data.state).toBe('completed');
    expect(job.data.result.outputTail).toEqual(['finished the work']);
    again.child.kill('SIGTERM');
    await again.exited;
  });

  it('exits non-zero with install advice when redis-server is missing', async () => {
    const run = start({ DATA_DIR: tmpDir('noredis'), PATH: '/nonexistent' });
    runs.push(run);
    expect(await run.exited).toBe(1);
    expect(run.out()).toContain('"redis-server" was not found on PATH');
    expect(run.out()).toContain('apt-get install redis-server');
    expect(run.out()).toContain('REDIS_URL');
  });

  it('refuses to start with a short JWT_SECRET or a bad inventory, saying why', async () => {
    const short = start({ DATA_DIR: tmpDir('short'), JWT_SECRET: 'too-short', REDIS_URL: 'redis://127.0.0.1:1' });
    runs.push(short);
    // 2: a setting is wrong, and the message names it.
    expect(await short.exited).toBe(2);
    expect(short.out()).toContain('at least 32 bytes');

    const inv = tmpDir('inv');
    const file = `${inv}/servers.json`;
    await import('node:fs').then((fs) => fs.writeFileSync(file, JSON.stringify({ servers: [{ id: 'ok-1', host: 'a' }, { id: 'web-2', host: 'b', scan: { ports: [70000] } }] })));
    const bad = start({ DATA_DIR: inv, SERVERS_FILE: file, REDIS_URL: 'redis://127.0.0.1:1' });
    runs.push(bad);
    expect(await bad.exited).toBe(2);
    expect(bad.out()).toContain('servers[1] (id "web-2").scan.ports.0');
  });

  it('SIGHUP stops it like SIGTERM, and a Ctrl-C to the whole process group (two copies of SIGINT) counts once', async () => {
    const hup = start({ DATA_DIR: tmpDir('hup'), WORKERS: 'off' });
    runs.push(hup);
    await waitFor(hup, /Jobs API on http:\/\/localhost:(\d+)/);
    hup.child.kill('SIGHUP');
    expect(await hup.exited).toBe(0);

    const run = start({ DATA_DIR: tmpDir('group') }, { detached: true });
    runs.push(run);
    await waitFor(run, /Jobs API on http:\/\/localhost:(\d+)/);
    // As a terminal's Ctrl-C: SIGINT to every process of the group, twice in quick succession.
    process.kill(-run.child.pid!, 'SIGINT');
    process.kill(-run.child.pid!, 'SIGINT');
    expect(await run.exited).toBe(0);
    expect(run.out()).toContain('"signal":"SIGINT"');
    expect(run.out()).not.toContain('second signal');
    expect(run.out()).toContain('stopped');
  });

  it('`npm start` stops the server and its Redis when a supervisor sends SIGTERM to npm alone', async () => {
    const run = startNpm({ DATA_DIR: tmpDir('npm-start'), WORKERS: 'off', PORT: '0', HOST: '127.0.0.1' });
    runs.push(run);
    const redisPid = Number((await waitFor(run, /"redis":"[^"]+","pid":(\d+)/))[1]);
    const serverPid = Number((await waitFor(run, /"pid":(\d+),"hostname"/))[1]);
    await waitFor(run, /Jobs API on http:\/\/localhost:(\d+)/);
    run.child.kill('SIGTERM');
    await run.exited;
    for (let i = 0; i < 100 && (alive(serverPid) || alive(redisPid)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(serverPid)).toBe(false);
    expect(alive(redisPid)).toBe(false);
  });

  it('`npm start` runs the compiled code on 127.0.0.1, says where to go, and refuses a second start on its DATA_DIR', async () => {
    const dataDir = tmpDir('twice');
    const first = startNpm({ DATA_DIR: dataDir, WORKERS: 'off', PORT: '0' });
    runs.push(first);
    const serverPid = Number((await waitFor(first, /"pid":(\d+),"hostname"/))[1]);
    const port = Number((await waitFor(first, /Jobs API on http:\/\/localhost:(\d+)/))[1]);
    await waitFor(first, /export TOKEN=/);
    for (const where of ['this machine only', `localhost:${port}/docs`, '/admin/queues', `/ui/jobs/<jobId>#token=`, 'npm run jobsctl -- job:list']) {
      expect(first.out()).toContain(where);
    }
    // Compiled JavaScript, not the TypeScript loader.
    const cmdline = readFileSync(`/proc/${serverPid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.some((a) => a.endsWith('bin/start.js'))).toBe(true);
    expect(cmdline.join(' ')).not.toContain('tsx');
    // Loopback only: this machine's other addresses are refused.
    const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
    if (external) await expect(fetch(`http://${external.address}:${port}/health`)).rejects.toThrow();

    const second = start({ DATA_DIR: dataDir, WORKERS: 'off' });
    runs.push(second);
    expect(await second.exited).toBe(2);
    expect(second.out()).toContain(`is in use by the Jobs API running as process ${serverPid}`);
    // The first one's Redis (its socket, its files) is untouched.
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);
    first.child.kill('SIGTERM');
    await first.exited;
    for (let i = 0; i < 100 && alive(serverPid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(serverPid)).toBe(false);
  });
});

