import { execFile } from 'node:child_process';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, makeApp, token, waitForJob } from '../helpers.js';

const BIN = path.resolve('bin/jobsctl.js');
const node = process.execPath;

// Each command is a process of its own (tsx loads in a second or two on a busy machine): a case runs a dozen.
describe('jobsctl against a listening server', { timeout: 90_000 }, () => {
  let app: FastifyInstance;
  let url: string;
  const admin = token(ADMIN);

  beforeAll(async () => {
    app = await makeApp({
      servers: [
        { id: 'web', tenant: 'default', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'bad', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: mirror down'); process.exit(7)"] } },
        { id: 'hang', tenant: 'default', host: '127.0.0.1', update: { command: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 600 } },
      ],
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  /** Run jobsctl the way a script does: stdin and stdout are pipes, not a terminal. */
  function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(node, [BIN, ...args], { env: { ...process.env, JOBS_API_URL: url, JOBS_API_TOKEN: admin, NO_COLOR: '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
      child.stdin?.end();
    });
  }
  const json = async (args: string[]) => {
    const r = await run(['--json', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };

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
});
