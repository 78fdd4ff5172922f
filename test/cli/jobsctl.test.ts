import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobsctlAgainst } from './jobsctl-harness.js';
import { buildProgram } from '../../src/cli/jobsctl.js';
import { SseParser } from '../../src/cli/jobsctl/sse.js';
import { ADMIN, makeApp, tmpDir, token, waitForJob } from '../helpers.js';

const BIN = path.resolve('bin/jobsctl.js');
const node = process.execPath;
const CHATTY = "const lines = ['one', 'PROGRESS 50', 'two', 'three']; let i = 0; const t = setInterval(() => { console.log(lines[i++]); if (i === lines.length) clearInterval(t); }, 300);";

// Each command is a process of its own (tsx loads in a second or two on a busy machine): a case runs a dozen.
describe('jobsctl against a listening server', { timeout: 90_000 }, () => {
  let app: FastifyInstance;
  let url: string;
  const admin = token(ADMIN);
  const { run, json, call } = jobsctlAgainst({ app: () => app, url: () => url, token: admin });

  const sources = tmpDir('jobsctl-src');
  writeFileSync(path.join(sources, 'notes.txt'), 'kept by the backup\n');

  beforeAll(async () => {
    app = await makeApp({
      servers: [
        { id: 'web', tenant: 'default', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'bad', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: mirror down'); process.exit(7)"] } },
        { id: 'hang', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 600 } },
        // An update that takes a second or so: three lines, a progress report between them, exit 0.
        { id: 'chatty', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', CHATTY] } },
        // One that prints, then fails.
        { id: 'failing', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', "console.log('step 1'); setTimeout(() => { console.error('E: disk full'); process.exit(3); }, 300)"] } },
        { id: 'files', tenant: 'default', host: '127.0.0.1', backup: { paths: [sources] } },
      ],
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());


  it('queue:status: a table when piped has no colours; --json parses', async () => {
    const table = await run(['queue:status']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^QUEUE\s+STATE\s+WORKERS\s+WAITING/);
    expect(table.stdout).toMatch(/\nscan\s+running\s+1\s+/);
    expect(table.stdout).not.toContain('\x1b[');
    const list = await json(['queue:status']);
    expect(list.map((q: { queue: string }) => q.queue)).toEqual(['backup', 'scan', 'update']);
    expect((await json(['queue:status', '--queue', 'scan'])).queue).toBe('scan');
  });

  it('job:submit then job:get --wait: exit 0 when the job completes, 4 when it fails', async () => {
    const submitted = await run(['job:submit', 'scan:quick', '--data', '{"serverId":"web"}']);
    expect(submitted.code, submitted.stderr).toBe(0);
    const id = submitted.stdout.trim();
    expect(id).toMatch(/^scan_/);
    const done = await run(['--json', 'job:get', id, '--wait', '--timeout', '30']);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ id, state: 'completed' });

    const bad = (await json(['job:submit', 'update:server', '--data', '{"serverId":"bad"}', '--attempts', '1'])).jobId as string;
    const failed = await run(['job:get', bad, '--wait']);
    expect(failed.code).toBe(4);
    expect(failed.stdout).toContain('reason: update command exited with code 7');
  });

  it('failures, error summary and a dry-run retry read the dead letters', async () => {
    const failures = await json(['queue:failures', '--queue', 'update', '--limit', '5']);
    expect(failures[0]).toMatchObject({ type: 'update:server', state: 'failed' });
    const summary = await json(['queue:error-summary']);
    expect(summary.groups[0]).toMatchObject({ errorType: 'update command exited with code N; last output:', count: 1 });
    const ofType = await json(['queue:failures', '--error-type', summary.groups[0].errorType]);
    expect(ofType.map((j: { id: string }) => j.id)).toEqual([summary.groups[0].newest.jobId]);
    expect(await json(['queue:failures', '--error-type', 'no such error type'])).toEqual([]);
    const dry = await json(['queue:retry', '--queue', 'update', '--error', 'mirror', '--dry-run']);
    expect(dry).toMatchObject({ matched: 1, retried: 0 });
    // Retrying for real is destructive enough to ask: a script must say --yes.
    const refused = await run(['queue:retry', '--queue', 'update', '--error', 'mirror']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Refusing without --yes');
    expect(await json(['--yes', 'queue:retry', '--queue', 'update', '--error', 'mirror'])).toMatchObject({ matched: 1, retried: 1 });
  });

  it('queue:stuck exits 3 when it finds stuck jobs; unstick needs --yes', async () => {
    expect((await run(['queue:stuck', '--queue', 'update'])).code).toBe(0);
    const id = (await json(['job:submit', 'update:server', '--data', '{"serverId":"hang"}', '--attempts', '1'])).jobId as string;
    await waitForJob(app, id, ['active']);
    await new Promise((r) => setTimeout(r, 400));
    const stuck = await run(['--json', 'queue:stuck', '--queue', 'update', '--older-than', '200']);
    expect(stuck.code).toBe(3);
    expect(JSON.parse(stuck.stdout).map((j: { id: string }) => j.id)).toEqual([id]);
    expect((await run(['queue:unstick', '--queue', 'update', '--older-than', '200'])).code).toBe(2);
    expect(await json(['--yes', 'queue:unstick', '--queue', 'update', '--older-than', '200'])).toMatchObject({ moved: 1, jobs: [id] });
  });

  it('pause, resume, drain, metrics, workers, tenants and schedules', async () => {
    expect((await json(['queue:pause', '--queue', 'scan'])).paused).toBe(true);
    await json(['job:submit', 'scan:quick', '--data', '{"serverId":"web"}']);
    expect(await json(['--yes', 'queue:drain', '--queue', 'scan'])).toMatchObject({ removed: { waiting: 1, delayed: 0 } });
    expect((await json(['queue:resume', '--queue', 'scan'])).paused).toBe(false);

    const metrics = await json(['queue:metrics', '--queue', 'scan']);
    expect(Object.keys(metrics).sort()).toEqual(['health', 'scan']);
    expect(metrics.health.status).toMatch(/healthy|degraded|unhealthy/);
    // The guide's indicators per queue; exit 3 when a queue is not healthy (paused with a job waiting and no slot taken is still healthy).
    const health = await run(['--json', 'queue:health', '--queue', 'scan']);
    expect(JSON.parse(health.stdout)).toMatchObject({ status: expect.stringMatching(/^(healthy|warning|critical)$/), maxConcurrency: expect.any(Number) });
    expect(health.code).toBe(JSON.parse(health.stdout).status === 'healthy' ? 0 : 3);
    const healthTable = await run(['queue:health']);
    expect(healthTable.stdout).toMatch(/QUEUE\s+STATUS\s+ACTIVE % OF MAX\s+WAITING\s+FAILED \(1 H\)\s+AVG WAIT/);
    expect((await json(['worker:status'])).queues.scan.online).toBe(1);
    const org = await json(['queue:org-stats', '--org', 'default']);
    expect(org[0].tenant).toBe('default');
    expect((await json(['queue:set-limit', '--org', 'default', '--max', '1'])).override).toBe(1);
    expect((await json(['queue:reset-limit', '--org', 'default'])).override).toBeNull();

    const added = await json(['schedule:add', '--id', 'nightly', '--type', 'scan:full', '--data', '{"serverId":"web"}', '--cron', '0 2 * * *', '--tz', 'UTC']);
    expect(added.next[0]).toMatch(/T02:00:00.000Z$/);
    expect((await json(['schedule:list'])).map((s: { id: string }) => s.id)).toEqual(['nightly']);
    expect((await run(['schedule:remove', '--id', 'nightly'])).code).toBe(2);
    await json(['--yes', 'schedule:remove', '--id', 'nightly']);
    expect(await json(['schedule:list'])).toEqual([]);
  });

  it('distinct exit codes for usage, refusal, authorization and an unreachable API', async () => {
    expect((await run(['queue:pause'])).code).toBe(2);
    expect((await run(['queue:status', '--queue', 'mail'])).code).toBe(2);
    expect((await run(['job:submit', 'scan:quick', '--data', '{not json'])).code).toBe(2);
    const refused = await run(['job:submit', 'scan:quick', '--data', '{"serverId":"nope"}']);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toContain('UNKNOWN_SERVER');
    expect((await run(['queue:status'], { JOBS_API_TOKEN: token({ tenant: 'default', scope: 'jobs:read' }) })).code).toBe(7);
    expect((await run(['queue:status'], { JOBS_API_TOKEN: '' })).code).toBe(2);
    expect((await run(['queue:status'], { JOBS_API_URL: 'http://127.0.0.1:9' })).code).toBe(8);
  });

  it('runs as `npm run queue:<command> -- --queue=scan`', async () => {
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile('npm', ['run', '--silent', 'queue:status', '--', '--queue=scan', '--json'], { env: { ...process.env, JOBS_API_URL: url, JOBS_API_TOKEN: admin } }, (err, stdout) =>
        resolve({ code: err ? 1 : 0, stdout }),
      );
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).queue).toBe('scan');
  });

  // The job and server commands (issue 16). After the tests above, which count the update failures they make.

  /** The API in the test process, as admin: to set up jobs without spending a jobsctl process on it. */
  const eventsOf = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l));
  const logLines = async (id: string): Promise<string[]> => (await call('GET', `/api/jobs/${id}/logs?limit=1000`)).lines;

  /** Run jobsctl with the update queue paused until it listens to the job's events, so it sees every event live. */
  async function whileListening(args: string[], submit: () => Promise<string>) {
    await call('POST', '/api/queues/update/pause');
    try {
      const id = await submit();
      const before = app.events.listeners;
      const running = run(args.map((a) => (a === 'ID' ? id : a)));
      const deadline = Date.now() + 30_000;
      while (app.events.listeners <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(app.events.listeners, 'jobsctl never listened to the job\'s events').toBeGreaterThan(before);
      await call('POST', '/api/queues/update/resume');
      return { id, ...(await running) };
    } finally {
      await call('POST', '/api/queues/update/resume');
    }
  }
  const updateOf = async (server: string, attempts?: number) => (await call('POST', `/api/servers/${server}/update`, attempts ? { options: { attempts } } : {})).jobId as string;

  /**
   * An HTTP proxy in front of the app that records every request; `cutNextStream`
   * makes it end the next event stream abruptly after its first two events.
   */
  async function proxy() {
    const requests: Array<{ method: string; url: string; lastEventId: string | undefined }> = [];
    let cutNextStream = false;
    const server = http.createServer((req, res) => {
      requests.push({ method: req.method!, url: req.url!, lastEventId: req.headers['last-event-id'] as string | undefined });
      const cut = cutNextStream && req.url!.endsWith('/events');
      if (cut) cutNextStream = false;
      const upstream = http.request(new URL(req.url!, url), { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode!, up.headers);
        let text = '';
        let sent = false;
        up.on('data', (chunk: Buffer) => {
          if (!cut) return void res.write(chunk);
          if (sent) return;
          text += chunk.toString();
          const first = text.indexOf('\n\n');
          const second = first < 0 ? -1 : text.indexOf('\n\n', first + 2);
          if (second < 0) return;
          sent = true;
          up.destroy();
          // Once the two events are on their way: a destroy before the write is flushed would lose them.
          res.write(text.slice(0, second + 2), () => res.destroy());
        });
        up.on('end', () => res.end());
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      requests,
      cutNextStream: () => (cutNextStream = true),
      close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
    };
  }

  it('server:list; job:list with filters, a cursor, and --all across pages', async () => {
    await call('POST', '/api/jobs/bulk', { jobs: [1, 2, 3, 4].map(() => ({ type: 'scan:quick', data: { serverId: 'web' } })) });
    const direct = await call('GET', '/api/jobs?queue=scan&limit=100');
    const firstTwo = await call('GET', '/api/jobs?queue=scan&limit=2');
    const nextTwo = await call('GET', `/api/jobs?queue=scan&limit=2&cursor=${encodeURIComponent(firstTwo.nextCursor)}`);
    const ids = (list: { jobs: Array<{ id: string }> }) => list.jobs.map((j) => j.id);
    expect(direct.jobs.length).toBeGreaterThan(4);

    const [servers, serverTable, page, all, filtered, listTable, badLimit, badState] = await Promise.all([
      json(['server:list']),
      run(['server:list']),
      json(['job:list', '--queue', 'scan', '--limit', '2']),
      json(['job:list', '--queue', 'scan', '--limit', '2', '--all']),
      json(['job:list', '--state', 'completed', '--type', 'scan:quick', '--limit', '100']),
      run(['job:list', '--queue', 'scan', '--limit', '2']),
      run(['job:list', '--limit', '0']),
      run(['job:list', '--state', 'stuck']),
    ]);
    // Every server, by id (the API pages them; server:list walks every page).
    expect(servers.map((x: { id: string }) => x.id)).toEqual(['bad', 'chatty', 'failing', 'files', 'hang', 'web']);
    expect(servers.find((x: { id: string }) => x.id === 'files').kinds).toEqual(['backup']);
    expect(serverTable.stdout).toMatch(/^ID\s+NAME\s+TENANT\s+HOST\s+KINDS\n/);
    expect(serverTable.stdout).toMatch(/\nfiles\s+files\s+default\s+127\.0\.0\.1\s+backup\n/);

    // One page, with the cursor to the next; the next through --cursor; every page with --all (a page of 2 at a time).
    expect(ids(page)).toEqual(ids(firstTwo));
    expect(page.nextCursor).toBe(firstTwo.nextCursor);
    expect(ids(await json(['job:list', '--queue', 'scan', '--limit', '2', '--cursor', page.nextCursor]))).toEqual(ids(nextTwo));
    expect(ids(all)).toEqual(ids(direct));
    expect(all.nextCursor).toBeNull();
    expect(filtered.jobs.length).toBeGreaterThan(0);
    for (const j of filtered.jobs) expect(j).toMatchObject({ state: 'completed', type: 'scan:quick' });

    expect(listTable.code).toBe(0);
    expect(listTable.stdout).toMatch(/^JOB\s+TYPE\s+TENANT\s+STATE\s+PROGRESS\s+ATTEMPTS\s+CREATED\s+FINISHED\n/);
    expect(listTable.stdout.trim().split('\n')).toHaveLength(3);
    expect(listTable.stderr).toContain(`--cursor=${page.nextCursor}`);
    expect(badLimit.code).toBe(2);
    expect(badState.code).toBe(2);
  });

  it('server:list walks every page of an inventory larger than a page; --limit and --cursor give one page', async () => {
    // More servers than the largest page (1000), in no order in the file.
    const ids = Array.from({ length: 2345 }, (_, i) => `n-${String((i * 11) % 2345).padStart(4, '0')}`);
    const big = await makeApp({ env: { WORKERS: 'off' }, servers: ids.map((id) => ({ id, tenant: 'default', host: '127.0.0.1', scan: { ports: [1] } })) });
    try {
      const bigUrl = await big.listen({ port: 0, host: '127.0.0.1' });
      const cli = jobsctlAgainst({ app: () => big, url: () => bigUrl, token: admin });
      const sorted = [...ids].sort();
      const [every, table, first, firstTable] = await Promise.all([
        cli.json(['server:list']),
        cli.run(['server:list']),
        cli.json(['server:list', '--limit', '2']),
        cli.run(['server:list', '--limit', '2']),
      ]);
      // The same output as ever: every server (now by id), an array with --json, a table without.
      expect(every.map((x: { id: string }) => x.id)).toEqual(sorted);
      expect(table.stdout.trim().split('\n')).toHaveLength(sorted.length + 1);
      expect(table.stderr).toBe('');
      // One page: the API's page with --json; the table, and the next cursor on stderr.
      expect(first.servers.map((x: { id: string }) => x.id)).toEqual(sorted.slice(0, 2));
      expect(first.nextCursor).toEqual(expect.any(String));
      expect(firstTable.stdout.trim().split('\n')).toHaveLength(3);
      expect(firstTable.stderr).toContain(`--cursor=${first.nextCursor}`);
      const second = await cli.json(['server:list', '--limit', '3', '--cursor', first.nextCursor]);
      expect(second.servers.map((x: { id: string }) => x.id)).toEqual(sorted.slice(2, 5));
      const bad = await cli.run(['server:list', '--cursor', 'not-a-cursor']);
      expect(bad.code).toBe(6);
      expect(bad.stderr).toContain('INVALID_CURSOR');
      expect((await cli.run(['server:list', '--limit', '1001'])).code).toBe(2);
    } finally {
      await big.close();
    }
  });

  it('job:list --server, --since and --until: the jobs of one server, of a time window', async () => {
    const web = await call('POST', '/api/jobs', { type: 'scan:quick', data: { serverId: 'web' } });
    const everyServer = await json(['job:list', '--all']);
    // Earlier tests ran jobs on other servers: the filter has something to leave out.
    expect(new Set(everyServer.jobs.map((j: { data: { serverId: string } }) => j.data.serverId)).size).toBeGreaterThan(1);
    const byServer = await json(['job:list', '--server', 'web', '--since', '10m', '--all']);
    expect(byServer.jobs.map((j: { id: string }) => j.id)).toContain(web.jobId);
    expect(byServer.jobs.every((j: { data: { serverId: string } }) => j.data.serverId === 'web')).toBe(true);
    const recent = await json(['job:list', '--since', '10m', '--all']);
    expect(recent.jobs.map((j: { id: string }) => j.id)).toContain(web.jobId);
    expect((await json(['job:list', '--until', '2020-01-01T00:00:00Z', '--all'])).jobs).toEqual([]);
    const bad = await run(['job:list', '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since must be a time ago');
  });

  it('job:watch --json: every event live, exit 0 when the job completes and 4 when it fails', async () => {
    const done = await whileListening(['--json', 'job:watch', 'ID'], () => updateOf('chatty'));
    expect(done.code, done.stderr).toBe(0);
    const events = eventsOf(done.stdout);
    // The queue resumes once jobsctl listens, which may be a moment before its stream reads the job: the
    // snapshot is the job as it was then, still waiting or just taken.
    expect(events[0]).toMatchObject({ event: 'snapshot', id: '0', data: { id: done.id, state: expect.stringMatching(/^(waiting|active)$/) } });
    const logs = events.filter((e) => e.event === 'log');
    expect(logs.map((e) => e.data.index)).toEqual(logs.map((_, i) => i));
    expect(logs.map((e) => e.data.line)).toEqual(await logLines(done.id));
    expect(logs.map((e) => e.data.line)).toEqual(expect.arrayContaining(['one', 'two', 'three']));
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data.progress);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(events.at(-1)).toMatchObject({ event: 'completed', id: `${logs.length}-end`, data: { id: done.id, state: 'completed', progress: 100 } });

    const failed = await whileListening(['--json', 'job:watch', 'ID'], () => updateOf('failing', 1));
    expect(failed.code, failed.stderr).toBe(4);
    const failedEvents = eventsOf(failed.stdout);
    expect(failedEvents.filter((e) => e.event === 'log').map((e) => e.data.line)).toEqual(expect.arrayContaining(['step 1', 'E: disk full']));
    expect(failedEvents.at(-1)).toMatchObject({ event: 'failed', id: expect.stringMatching(/^\d+-end$/), data: { state: 'failed', failedReason: expect.stringContaining('code 3') } });

    // Piped, without --json: plain lines (no bar, no colour), the log as it is, the job at the end.
    const plain = await run(['job:watch', done.id]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('\r');
    expect(plain.stdout).not.toContain('\x1b');
    const out = plain.stdout.trim().split('\n');
    expect(out[0]).toBe(`${done.id}: completed 100%`);
    expect(out.slice(1, -2)).toEqual(await logLines(done.id));
    expect(out.at(-2)).toMatch(new RegExp(`^${done.id}  update:server  completed  100%`));
    expect(out.at(-1)).toContain('"exitCode":0');
    expect((await run(['job:watch', failed.id])).code).toBe(4);
  });

  it('job:watch resumes after a dropped connection with Last-Event-ID: no line missed or repeated', async () => {
    const p = await proxy();
    try {
      p.cutNextStream();
      const id = await updateOf('chatty');
      const r = await run(['--json', 'job:watch', id], { JOBS_API_URL: p.url });
      expect(r.code, r.stderr).toBe(0);
      const streams = p.requests.filter((q) => q.url.endsWith('/events'));
      expect(streams).toHaveLength(2);
      expect(streams[0]!.lastEventId).toBeUndefined();
      expect(streams[1]!.lastEventId).toMatch(/^\d+$/);
      const events = eventsOf(r.stdout);
      // The first connection's two events, then a fresh snapshot and the lines after the id it resumed from.
      expect(events.filter((e) => e.event === 'snapshot')).toHaveLength(2);
      const logs = events.filter((e) => e.event === 'log');
      expect(logs.map((e) => e.data.index)).toEqual(logs.map((_, i) => i));
      expect(logs.map((e) => e.data.line)).toEqual(await logLines(id));
      expect(events.at(-1)).toMatchObject({ event: 'completed', id: `${logs.length}-end` });
    } finally {
      await p.close();
    }
  });

  it('job:logs: the lines, a window of them, --json, and --follow until the job ends', async () => {
    const id = (await call('GET', '/api/jobs?type=update:server&state=completed&limit=1')).jobs[0].id as string;
    const lines = await logLines(id);
    expect(lines).toEqual(expect.arrayContaining(['one', 'two', 'three']));
    const [all, window, asJson, bad] = await Promise.all([
      run(['job:logs', id]),
      run(['job:logs', id, '--start', '1', '--limit', '2']),
      json(['job:logs', id]),
      run(['job:logs', id, '--follow', '--limit', '3']),
    ]);
    expect(all.stdout).toBe(lines.join('\n') + '\n');
    expect(window.stdout).toBe(lines.slice(1, 3).join('\n') + '\n');
    expect(asJson).toEqual({ jobId: id, start: 0, count: lines.length, lines });
    expect(bad.code).toBe(2);

    // Following a job from before it starts: every line once, in order, then exit 0; a failed job's: exit 4.
    const followed = await whileListening(['job:logs', 'ID', '--follow'], () => updateOf('chatty'));
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toBe((await logLines(followed.id)).join('\n') + '\n');
    const failing = (await call('GET', '/api/jobs?type=update:server&state=failed&limit=100')).jobs.find((j: { data: { serverId: string } }) => j.data.serverId === 'failing');
    const failedFollow = await run(['--json', 'job:logs', failing.id, '--follow']);
    expect(failedFollow.code).toBe(4);
    expect(eventsOf(failedFollow.stdout).map((e) => e.line)).toEqual(await logLines(failing.id));
  });

  it('--wait uses the long poll, and exits 0 completed, 4 failed, 5 timed out; servers, backups and restores', async () => {
    const p = await proxy();
    try {
      // A job that starts in 4 s: polling every 500 ms would ask 8 times, the long poll asks once after the first read.
      const delayed = (await call('POST', '/api/jobs', { type: 'scan:quick', data: { serverId: 'web' }, options: { delay: 4000 } })).jobId as string;
      const waited = await run(['--json', 'job:get', delayed, '--wait', '--timeout', '30'], { JOBS_API_URL: p.url });
      expect(waited.code, waited.stderr).toBe(0);
      expect(JSON.parse(waited.stdout)).toMatchObject({ id: delayed, state: 'completed' });
      const reads = p.requests.filter((q) => q.url.startsWith(`/api/jobs/${delayed}`));
      expect(reads.length).toBeLessThanOrEqual(3);
      expect(reads.some((q) => /[?&]waitMs=\d+/.test(q.url))).toBe(true);
    } finally {
      await p.close();
    }

    const later = (await call('POST', '/api/jobs', { type: 'scan:quick', data: { serverId: 'web' }, options: { delay: 60_000 } })).jobId as string;
    const [timedOut, scan, update, backup, submitted, noServer] = await Promise.all([
      run(['job:get', later, '--wait', '--timeout', '1']),
      run(['--json', 'server:scan', 'web', '--type', 'quick', '--wait']),
      run(['server:update', 'failing', '--attempts', '1', '--wait']),
      run(['--json', 'server:backup', 'files', '--type', 'incremental', '--no-compression', '--wait']),
      run(['job:submit', 'scan:quick', '--data', '{"serverId":"web"}', '--priority', '1', '--wait']),
      run(['server:backup', 'nope']),
    ]);
    expect(timedOut.code).toBe(5);
    expect(timedOut.stdout).toBe(`${later}: still delayed at 0% after 1 s\n`);
    expect(scan.code, scan.stderr).toBe(0);
    expect(JSON.parse(scan.stdout)).toMatchObject({ type: 'scan:quick', state: 'completed' });
    expect(update.code).toBe(4);
    expect(update.stdout).toContain('reason: update command exited with code 3');
    expect(backup.code, backup.stderr).toBe(0);
    const backedUp = JSON.parse(backup.stdout);
    expect(backedUp).toMatchObject({ type: 'backup:manual', state: 'completed', data: { backup_type: 'incremental', compression: false }, result: { files: 1 } });
    expect(submitted.code).toBe(0);
    expect(submitted.stdout).toMatch(/^scan_\S+\s+scan:quick\s+completed\s+100%/);
    expect(noServer.code).toBe(6);
    expect(noServer.stderr).toContain('SERVER_NOT_FOUND');

    // Without --wait: the job id alone, for JOB=$(jobsctl ...).
    const [list, listTable, enqueued] = await Promise.all([json(['backup:list', 'files']), run(['backup:list', 'files']), run(['server:update', 'chatty'])]);
    expect(enqueued.stdout).toMatch(/^update_\S+\n$/);
    expect(list[0]).toMatchObject({ backupId: backedUp.result.backupId, jobId: backedUp.id, files: 1, compressed: false });
    expect(listTable.stdout).toMatch(/^BACKUP\s+TYPE\s+BASE\s+FILES\s+BYTES\s+STORED\s+CREATED\s+JOB\n/);
    expect(listTable.stdout).toContain(backedUp.result.backupId);
    const restored = await run(['--json', 'backup:restore', 'files', backedUp.result.backupId, '--wait']);
    expect(restored.code, restored.stderr).toBe(0);
    const directory = JSON.parse(restored.stdout).result.directory as string;
    expect(readFileSync(path.join(directory, sources, 'notes.txt'), 'utf8')).toBe('kept by the backup\n');
    await waitForJob(app, enqueued.stdout.trim());
  });

  it('job:cancel, job:retry and job:remove; an unknown job is exit 6', async () => {
    const delayed = (await call('POST', '/api/jobs', { type: 'scan:quick', data: { serverId: 'web' }, options: { delay: 60_000 } })).jobId as string;
    const hang = await updateOf('hang', 1);
    await waitForJob(app, hang, ['active']);
    const failing = await updateOf('failing', 1);
    const done = (await call('GET', '/api/jobs?state=completed&limit=1')).jobs[0].id as string;
    const [removedByCancel, cancelled, retryDone] = await Promise.all([
      json(['job:cancel', delayed]),
      run(['job:cancel', hang]),
      run(['job:retry', done]),
    ]);
    expect(removedByCancel).toMatchObject({ jobId: delayed, outcome: 'removed', job: null });
    expect(cancelled.stdout).toMatch(new RegExp(`^${hang}: (cancelled \\(it was running and has stopped\\)|cancelling)`));
    expect(retryDone.code).toBe(6);
    expect(retryDone.stderr).toContain('JOB_NOT_FAILED');

    await waitForJob(app, failing);
    const [watchCancelled, retried, getGone, watchUnknown, logsUnknown, cancelUnknown] = await Promise.all([
      run(['job:watch', hang]),
      run(['job:retry', failing, '--wait']),
      run(['job:get', delayed]),
      run(['job:watch', 'update_doesnotexist0000000000']),
      run(['job:logs', 'scan_doesnotexist0000000000', '--follow']),
      run(['job:cancel', 'scan_doesnotexist0000000000']),
    ]);
    expect(watchCancelled.code).toBe(4);
    expect(watchCancelled.stdout).toContain('reason: cancelled');
    expect(retried.code).toBe(4);
    expect(retried.stdout).toMatch(new RegExp(`^${failing}  update:server  failed`));
    for (const r of [getGone, watchUnknown, logsUnknown, cancelUnknown]) {
      expect(r.code, r.stderr).toBe(6);
      expect(r.stderr).toContain('JOB_NOT_FOUND');
    }

    const refused = await run(['job:remove', failing]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Refusing without --yes');
    expect(await json(['--yes', 'job:remove', failing])).toEqual({ jobId: failing, removed: true });
    expect((await run(['job:get', failing])).code).toBe(6);
  });

  const hasScript = (() => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasScript)('job:watch draws a progress bar on a terminal', async () => {
    const id = (await call('GET', '/api/jobs?type=update:server&state=completed&limit=1')).jobs[0].id as string;
    // util-linux `script` gives the command a pseudo-terminal: what a person at a terminal sees.
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile('script', ['-qec', `'${node}' '${BIN}' job:watch ${id}`, '/dev/null'], { env: { ...process.env, JOBS_API_URL: url, JOBS_API_TOKEN: admin, NO_COLOR: '1' }, timeout: 60_000 }, (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
      );
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`\r\x1b[2K${'█'.repeat(30)} 100%  completed  ${id}`);
    expect(r.stdout).toContain('\r\x1b[2Kone');
    expect(r.stdout).toMatch(new RegExp(`${id}  update:server  completed  100%`));
  });

  it('every job, server and backup command has its npm run alias, as job:get and job:submit do', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    const names = buildProgram().commands.map((c) => c.name()).filter((n) => /^(job|server|backup):/.test(n));
    expect(names.length).toBeGreaterThanOrEqual(13);
    for (const name of names) expect(scripts[name], name).toBe(`node bin/jobsctl.js ${name}`);
    expect(existsSync(BIN)).toBe(true);
  });
});

describe('the event stream parser of job:watch', () => {
  const stream = '\uFEFF: heartbeat\r\nevent: snapshot\r\nid: 0\r\ndata: {"a":1}\r\n\r\nevent: log\rid: 1\rdata: first\rdata:second\r\r' +
    'event: empty\nid: 7\n\ndata: no type, id carried over\n\nevent: completed\nid: 1-end\ndata\n\nevent: cut';
  const expected = [
    { event: 'snapshot', id: '0', data: '{"a":1}' },
    { event: 'log', id: '1', data: 'first\nsecond' },
    // An event without data is not dispatched, but its id counts.
    { event: 'message', id: '7', data: 'no type, id carried over' },
    { event: 'completed', id: '1-end', data: '' },
  ];

  it('reads LF, CR and CRLF lines, comments, a BOM, multi-line data and carried-over ids', () => {
    expect(new SseParser().push(stream)).toEqual(expected);
  });

  it('gives the same events however the text is cut, even between a CR and its LF', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const parser = new SseParser();
      expect([...parser.push(stream.slice(0, cut)), ...parser.push(stream.slice(cut))], `cut at ${cut}`).toEqual(expected);
    }
    const parser = new SseParser();
    expect([...stream].flatMap((c) => parser.push(c))).toEqual(expected);
  });
});
