import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobsctlAgainst } from './jobsctl-harness.js';
import { buildProgram } from '../../src/cli/jobsctl.js';
import { formatDuration } from '../../src/cli/jobsctl/queue-ops-commands.js';
import { ADMIN, makeApp, token, waitForJob } from '../helpers.js';

const node = process.execPath;
const DAY_MS = 24 * 3600 * 1000;

// The operations guide's "Clear Stuck Jobs", "Drain a Queue" and "Queue Backlog Growing" commands, each a process of its own.
describe('jobsctl queue:remove-stuck, queue:drain --delay/--remove, queue:throughput, queue:slow-jobs', { timeout: 90_000 }, () => {
  let app: FastifyInstance;
  let url: string;
  const admin = token(ADMIN);
  const { run, json, call } = jobsctlAgainst({ app: () => app, url: () => url, token: admin });

  beforeAll(async () => {
    app = await makeApp({
      servers: [
        { id: 'web', tenant: 'default', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'hang', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 600 } },
        { id: 'slow', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', 'setTimeout(() => process.exit(0), 700)'] } },
      ],
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  const submit = async (type: string, serverId: string, options: object = {}) => (await call('POST', '/api/jobs', { type, data: { serverId }, options })).jobId as string;

  it('queue:remove-stuck asks for --yes, then stops and removes the stuck job', async () => {
    const id = await submit('update:server', 'hang');
    await waitForJob(app, id, ['active']);
    const refused = await run(['queue:remove-stuck', '--queue', 'update', '--older-than', '0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('Refusing without --yes');
    expect((await run(['--yes', 'queue:remove-stuck'])).code).toBe(2);
    const removed = await run(['--yes', 'queue:remove-stuck', '--queue', 'update', '--older-than', '0']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout.trim()).toBe(`1 stuck jobs removed from update: ${id}`);
    expect((await run(['job:get', id])).code).toBe(6);
    expect(await json(['--yes', 'queue:remove-stuck', '--queue', 'update'])).toEqual({ queue: 'update', removed: 0, jobs: [] });
  });

  it('queue:drain --delay=24h keeps the waiting jobs, delayed; --remove removes them; bad delays are usage errors', async () => {
    await call('POST', '/api/queues/scan/pause');
    try {
      const kept = [await submit('scan:quick', 'web'), await submit('scan:full', 'web', { priority: 1 })];
      expect((await run(['queue:drain', '--queue', 'scan', '--delay=24h'])).code).toBe(2);
      const started = Date.now();
      const r = await json(['--yes', 'queue:drain', '--queue=scan', '--delay=24h']);
      expect(r).toMatchObject({ queue: 'scan', movedToDelayed: 2, removed: { waiting: 0, delayed: 0 } });
      expect(Date.parse(r.delayedUntil) - started).toBeGreaterThanOrEqual(DAY_MS);
      for (const id of kept) expect(await json(['job:get', id])).toMatchObject({ id, state: 'delayed', data: { serverId: 'web' } });

      await submit('scan:quick', 'web');
      const removed = await run(['--yes', 'queue:drain', '--queue', 'scan', '--remove']);
      expect(removed.code, removed.stderr).toBe(0);
      expect(removed.stdout.trim()).toBe('removed 1 waiting and 0 delayed jobs from scan');
      for (const id of kept) expect((await json(['job:get', id])).state).toBe('delayed');

      for (const bad of [['--delay=500ms'], ['--delay=31d'], ['--delay=soon'], ['--delay=1h', '--remove'], ['--delay=1h', '--delayed']]) {
        const res = await run(['--yes', 'queue:drain', '--queue', 'scan', ...bad]);
        expect(res.code, bad.join(' ')).toBe(2);
      }
    } finally {
      await call('POST', '/api/queues/scan/resume');
    }
  });

  it('queue:throughput: the jobs finished per minute, per queue, and minute by minute for one', async () => {
    const id = await submit('scan:quick', 'web');
    await waitForJob(app, id);
    const deadline = Date.now() + 15_000;
    let one = await json(['queue:throughput', '--queue', 'scan', '--window', '5']);
    while (one.total.completed < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      one = await json(['queue:throughput', '--queue', 'scan', '--window', '5']);
    }
    expect(one).toMatchObject({ queue: 'scan', windowMin: 5, total: { completed: 1, failed: 0, cancelled: 0 } });
    expect(one.buckets).toHaveLength(5);

    const all = await json(['queue:throughput']);
    expect(all.map((t: { queue: string; windowMin: number }) => [t.queue, t.windowMin])).toEqual([['backup', 60], ['scan', 60], ['update', 60]]);
    const table = await run(['queue:throughput', '--queue', 'scan']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^the last 60 minutes, from /);
    expect(table.stdout).toMatch(/\nQUEUE\s+COMPLETED\s+FAILED\s+CANCELLED\s+COMPLETED\/MIN\s+FINISHED\/MIN\n/);
    expect(table.stdout).toMatch(/\nscan\s+1\s+0\s+0\s+0\.02\s+0\.02\n/);
    expect(table.stdout).toMatch(/\nMINUTE\s+COMPLETED\s+FAILED\s+CANCELLED\n\d{4}-\d\d-\d\dT\d\d:\d\d:00\.000Z\s+1\s+0\s+0\n?$/);
    expect((await run(['queue:throughput', '--window', '0'])).code).toBe(2);
    expect((await run(['queue:throughput', '--window', '1441'])).code).toBe(2);
  });

  it('queue:slow-jobs: the slowest recent jobs, longest first, across queues or of one', async () => {
    const slow = await submit('update:server', 'slow');
    await waitForJob(app, slow);
    const mine = await json(['queue:slow-jobs', '--queue', 'update', '--limit', '1']);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ jobId: slow, queue: 'update', type: 'update:server', state: 'completed', serverId: 'slow', tenant: 'default' });
    expect(mine[0].durationMs).toBeGreaterThanOrEqual(700);
    const every = await json(['queue:slow-jobs']);
    expect(every[0].jobId).toBe(slow);
    expect(every.map((j: { queue: string }) => j.queue)).toContain('scan');
    for (let i = 1; i < every.length; i++) expect(every[i - 1].durationMs).toBeGreaterThanOrEqual(every[i].durationMs);
    const table = await run(['queue:slow-jobs', '--queue', 'update']);
    expect(table.stdout).toMatch(/^JOB\s+TYPE\s+STATE\s+SERVER\s+TENANT\s+DURATION\s+FINISHED AT\n/);
    expect(table.stdout).toMatch(new RegExp(`\\n${slow}\\s+update:server\\s+completed\\s+slow\\s+default\\s+\\d+(\\.\\d)? m?s\\s+\\d{4}-`));
    expect((await run(['queue:slow-jobs', '--limit', '101'])).code).toBe(2);
  });

  it('each command has its npm run alias, and a run time reads at a glance', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    const names = buildProgram().commands.map((c) => c.name());
    for (const name of ['queue:remove-stuck', 'queue:drain', 'queue:throughput', 'queue:slow-jobs']) {
      expect(names, name).toContain(name);
      expect(scripts[name], name).toBe(`node bin/jobsctl.js ${name}`);
    }
    expect([850, 12_400, 185_000, 7_800_000].map(formatDuration)).toEqual(['850 ms', '12.4 s', '3m 05s', '2h 10m']);
  });
});
