import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { QueueEvents } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { list as listTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/jobs/index.js';
import { createRedis } from '../../src/redis/connection.js';
import { redisKeys } from '../../src/redis/keys.js';
import { auth, makeApp, tmpDir, waitForJob } from '../helpers.js';

const H = auth({ tenant: 'ops' });

function listen(): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => s.end());
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}
const portOf = (srv: net.Server) => (srv.address() as net.AddressInfo).port;

describe('workers doing the real work', () => {
  let app: FastifyInstance;
  let openServer: net.Server;
  let closedPort: number;
  const source = tmpDir('backup-src');
  const bigFile = randomBytes(300_000);

  beforeAll(async () => {
    mkdirSync(path.join(source, 'site/assets'), { recursive: true });
    mkdirSync(path.join(source, 'site/node_modules/lib'), { recursive: true });
    writeFileSync(path.join(source, 'site/index.html'), '<h1>hello</h1>');
    writeFileSync(path.join(source, 'site/assets/blob.bin'), bigFile);
    writeFileSync(path.join(source, 'site/error.log'), 'noise');
    writeFileSync(path.join(source, 'site/node_modules/lib/x.js'), 'module.exports = 1');
    writeFileSync(path.join(source, 'notes.txt'), 'second root');

    openServer = await listen();
    const closed = await listen();
    closedPort = portOf(closed);
    await new Promise((r) => closed.close(r));

    const node = process.execPath;
    app = await makeApp({
      servers: [
        {
          id: 'files',
          tenant: 'ops',
          host: '127.0.0.1',
          backup: { paths: [path.join(source, 'site'), path.join(source, 'notes.txt')], exclude: ['*.log', 'node_modules'] },
        },
        { id: 'ports', tenant: 'ops', host: 'localhost', scan: { ports: [portOf(openServer), closedPort], timeoutMs: 1000 } },
        { id: 'nowhere', tenant: 'ops', host: 'no-such-host.invalid', scan: { ports: [80] } },
        {
          id: 'upd-ok',
          tenant: 'ops',
          host: '127.0.0.1',
          update: { command: [node, '-e', "console.log('PROGRESS 50'); setTimeout(() => console.log('upgraded 3 packages'), 1500)"], timeoutSec: 30 },
        },
        { id: 'upd-fail', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', "console.log('fetching'); console.error('E: disk full'); process.exit(7)"] } },
        { id: 'upd-hang', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 1 } },
        {
          id: 'upd-env',
          tenant: 'ops',
          host: '127.0.0.1',
          update: { command: [node, '-e', 'console.log(Object.keys(process.env).sort().join(" ")); console.log("MIRROR=" + process.env.MIRROR)'], env: { MIRROR: 'http://mirror.local' } },
        },
      ],
    });
  });
  afterAll(async () => {
    await app.close();
    openServer.close();
  });

  /**
   * Progress written while the job ran (milestones reached in the same turn
   * of the event loop collapse into one write), only forward, ending at 100.
   */
  function expectProgressAsItWent(values: number[]): void {
    expect(values.length).toBeGreaterThanOrEqual(3);
    expect(values).toEqual([...new Set(values)].sort((a, b) => a - b));
    expect(values[0]).toBeGreaterThanOrEqual(10);
    expect(values[0]).toBeLessThan(90);
    expect(values.at(-1)).toBe(100);
  }

  /** Every progress value the job reports, in order, as Redis streams them. */
  async function recordProgress(queue: keyof typeof QUEUES, run: () => Promise<string>): Promise<{ jobId: string; values: number[] }> {
    const connection = createRedis(app.config.redis!, 'worker', 'test-events');
    // From the stream's end now: a reader that starts at '$' on its first read misses what comes before it, under load.
    const [last] = (await connection.xrevrange(redisKeys(app.config.queuePrefix).queueEvents(queue), '+', '-', 'COUNT', 1)) as Array<[string, string[]]>;
    const events = new QueueEvents(QUEUES[queue].redisName, { connection, prefix: app.config.queuePrefix, lastEventId: last?.[0] ?? '0-0' });
    await events.waitUntilReady();
    const seen: Array<{ jobId: string; data: unknown }> = [];
    events.on('progress', ({ jobId, data }) => seen.push({ jobId, data }));
    const jobId = await run();
    await waitForJob(app, jobId);
    await new Promise((r) => setTimeout(r, 300));
    await events.close();
    connection.disconnect();
    return { jobId, values: seen.filter((s) => s.jobId === jobId).map((s) => Number(s.data)) };
  }

  it('backup: archives the declared paths minus excludes, with a SHA-256 that matches the file', async () => {
    const { jobId, values } = await recordProgress('backup', async () => {
      const res = await app.inject({ method: 'POST', url: '/api/servers/files/backup', headers: H, payload: { compression: true } });
      expect(res.statusCode).toBe(202);
      return res.json().data.jobId;
    });
    const job = await waitForJob(app, jobId);
    expect(job.state).toBe('completed');
    expect(job.progress).toBe(100);
    const result = job.result as { archive: string; files: number; bytes: number; sha256: string; backupId: string };
    expect(result.archive.startsWith(app.config.backupDir)).toBe(true);
    expect(result.archive.endsWith('.tar.gz')).toBe(true);
    const bytes = readFileSync(result.archive);
    expect(result.bytes).toBe(bytes.length);
    expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));

    const entries: Array<{ path: string; size: number }> = [];
    await listTar({ file: result.archive, onReadEntry: (e) => entries.push({ path: e.path, size: e.size }) });
    const names = entries.map((e) => '/' + e.path).sort();
    expect(names).toEqual([path.join(source, 'notes.txt'), path.join(source, 'site/assets/blob.bin'), path.join(source, 'site/index.html')].sort());
    expect(entries.find((e) => e.path.endsWith('blob.bin'))?.size).toBe(bigFile.length);
    expect(result.files).toBe(3);

    expectProgressAsItWent(values);
  });

  it('backup: an uncompressed archive is a plain tar', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/servers/files/backup', headers: H, payload: { compression: false } });
    const job = await waitForJob(app, res.json().data.jobId);
    const result = job.result as { archive: string; compressed: boolean };
    expect(result.compressed).toBe(false);
    expect(result.archive.endsWith('.tar')).toBe(true);
    expect(readFileSync(result.archive).subarray(257, 262).toString()).toBe('ustar');
  });

  it('scan:full finds the port the test opened open and a closed one closed, with latencies', async () => {
    const { jobId, values } = await recordProgress('scan', async () => {
      const res = await app.inject({ method: 'POST', url: '/api/servers/ports/scan', headers: H, payload: { scan_type: 'full' } });
      return res.json().data.jobId;
    });
    const job = await waitForJob(app, jobId);
    expect(job.state).toBe('completed');
    const r = job.result as { open: Array<{ port: number; latencyMs: number }>; closed: Array<{ port: number; reason: string }>; address: string };
    expect(r.open.map((p) => p.port)).toEqual([portOf(openServer)]);
    // Milliseconds to connect, measured: a loopback handshake is far below the server's 1000 ms scan timeout.
    expect(r.open[0]!.latencyMs).toBeTypeOf('number');
    expect(r.open[0]!.latencyMs).toBeLessThan(1000);
    expect(r.closed).toEqual([expect.objectContaining({ port: closedPort, reason: 'ECONNREFUSED' })]);
    expect(['127.0.0.1', '::1']).toContain(r.address);
    expectProgressAsItWent(values);
  });

  it('scan:quick checks only the first declared port', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/servers/ports/scan', headers: H, payload: { scan_type: 'quick' } });
    const job = await waitForJob(app, res.json().data.jobId);
    expect(job.result).toMatchObject({ scanType: 'quick', reachable: true, open: [{ port: portOf(openServer) }], closed: [] });
  });

  it('scan of a host that does not resolve fails with a reason that says so', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'scan:quick', data: { serverId: 'nowhere' }, options: { attempts: 1 } } });
    const job = await waitForJob(app, res.json().data.jobId);
    expect(job.state).toBe('failed');
    expect(job.failedReason).toMatch(/cannot resolve host "no-such-host.invalid"/);
  });

  it('update: the command gets PATH, HOME, LANG and what its entry declares, never the API\'s own environment', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/servers/upd-env/update', headers: H });
    const done = await waitForJob(app, res.json().data.jobId);
    expect(done.state).toBe('completed');
    const [names, mirror] = (done.result as { outputTail: string[] }).outputTail;
    expect(mirror).toBe('MIRROR=http://mirror.local');
    // This test process holds secrets and settings (REDIS_URL, VITEST...): none of them reach the command.
    expect(names!.split(' ').filter((n) => !['PATH', 'HOME', 'LANG', 'MIRROR'].includes(n))).toEqual([]);
  });

  it('update: runs the command, reports PROGRESS lines while it runs, completes on exit 0', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/servers/upd-ok/update', headers: H });
    const jobId = res.json().data.jobId;
    // PROGRESS 50 maps to 65 within the 40..90 band, seen while the command still runs.
    const running = await waitForJob(app, jobId, ['active', 'completed', 'failed']);
    let mid = running;
    const deadline = Date.now() + 5000;
    while (mid.state === 'active' && mid.progress !== 65 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 30));
      mid = (await app.jobs.store.get(jobId, undefined))!;
    }
    expect(mid).toMatchObject({ state: 'active', progress: 65 });
    // The output is in the job's log while the command still runs.
    const whileRunning = (await app.inject({ url: `/api/jobs/${jobId}/logs`, headers: H })).json().data;
    expect(whileRunning.lines).toContain('PROGRESS 50');
    expect(whileRunning.lines).not.toContain('upgraded 3 packages');
    expect((await app.jobs.store.get(jobId, undefined))!.state).toBe('active');
    const done = await waitForJob(app, jobId);
    expect(done).toMatchObject({ state: 'completed', progress: 100 });
    expect(done.result).toMatchObject({ exitCode: 0, outputTail: ['PROGRESS 50', 'upgraded 3 packages'] });

    // The command's output is the job's log, between the steps the worker logs, read a page at a time.
    const logs = (q: string, headers = H) => app.inject({ url: `/api/jobs/${jobId}/logs${q}`, headers });
    const all = (await logs('')).json().data;
    expect(all).toMatchObject({ jobId, start: 0, count: 4, nextStart: null });
    expect(all.lines).toEqual([
      '[jobs-api] running the update command (timeout 30s)',
      'PROGRESS 50',
      'upgraded 3 packages',
      expect.stringMatching(/^\[jobs-api\] command ended after \d+ ms: exit code 0$/),
    ]);
    expect((await logs('?start=1&limit=1')).json().data).toMatchObject({ lines: ['PROGRESS 50'], nextStart: 2 });
    expect((await logs('?start=2&limit=5')).json().data).toMatchObject({ lines: ['upgraded 3 packages', all.lines[3]], nextStart: null });
    expect((await logs('?start=5')).json().data).toMatchObject({ lines: [], count: 4, nextStart: null });
    expect((await logs('?limit=0')).statusCode).toBe(400);
    expect((await logs('?start=-1')).json().error.message).toMatch(/querystring\.start/);
    // Another tenant's job reads as missing.
    const other = await logs('', auth({ tenant: 'someone-else' }));
    expect(other.statusCode).toBe(404);
    expect(other.json().error.code).toBe('JOB_NOT_FOUND');
  });

  it('update: a non-zero exit fails with the exit code and the last lines, and retries per attempts', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'update:server', data: { serverId: 'upd-fail' }, options: { attempts: 1 } } });
    const job = await waitForJob(app, res.json().data.jobId);
    expect(job.state).toBe('failed');
    expect(job.failedReason).toContain('exited with code 7');
    expect(job.failedReason).toContain('E: disk full');
    expect(job.attempts).toBe(1);

    // Retry gives it a fresh run; it fails again the same way.
    const retry = await app.inject({ method: 'POST', url: `/api/jobs/${job.id}/retry`, headers: H });
    expect(retry.statusCode).toBe(200);
    expect(['waiting', 'active', 'failed']).toContain(retry.json().data.state);
    const again = await waitForJob(app, job.id, ['failed'], 20_000);
    expect(again.failedReason).toContain('exited with code 7');
    expect((await app.inject({ method: 'DELETE', url: `/api/jobs/${job.id}`, headers: H })).statusCode).toBe(200);
  });

  it('update: a command past its timeout is killed and the reason names the timeout', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'update:server', data: { serverId: 'upd-hang' }, options: { attempts: 1 } } });
    const job = await waitForJob(app, res.json().data.jobId);
    expect(job.state).toBe('failed');
    expect(job.failedReason).toMatch(/timed out after 1s/);
  });

  it('a job whose data no longer matches its schema fails without retries', async () => {
    const job = await app.queues.scan.add('scan:full', { tenant: 'ops', requestedBy: 'x', recordId: 'r', input: { serverId: 'ports', extra: 1 } }, { jobId: 'scan_BADBADBADBADBADBADBADB', attempts: 3 });
    const done = await waitForJob(app, job.id!);
    expect(done.state).toBe('failed');
    expect(done.failedReason).toMatch(/invalid job data/);
    expect(done.attempts).toBe(1);
  });

  it('a remove of a running job is refused with 409', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/servers/upd-ok/update', headers: H });
    const jobId = res.json().data.jobId;
    await waitForJob(app, jobId, ['active']);
    const del = await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}`, headers: H });
    expect(del.statusCode).toBe(409);
    expect(del.json().error.code).toBe('JOB_ACTIVE');
    await waitForJob(app, jobId);
  });
});
