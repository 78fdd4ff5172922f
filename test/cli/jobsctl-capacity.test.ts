import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobsctlAgainst } from './jobsctl-harness.js';
import { ADMIN, makeApp, token } from '../helpers.js';


// Each command is a process of its own (tsx loads in a second or two on a busy machine).
describe('jobsctl worker:scale and queue:throttle-org against a listening server', { timeout: 90_000 }, () => {
  let app: FastifyInstance;
  let url: string;
  const admin = token(ADMIN);
  const { run, json } = jobsctlAgainst({ app: () => app, url: () => url, token: admin });

  beforeAll(async () => {
    app = await makeApp({ servers: [{ id: 'web', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }] });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());


  it('worker:scale --queue=scan --count=7 sets it for every worker process; without --count shows it; --reset goes back', async () => {
    const set = await json(['worker:scale', '--queue=scan', '--count=7']);
    expect(set).toMatchObject({ queue: 'scan', configured: 5, override: 7, concurrency: 7, followWithinMs: 2000 });
    // This process's worker follows within 2 s.
    const deadline = Date.now() + 5000;
    while (app.workers!.scan.concurrency !== 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(app.workers!.scan.concurrency).toBe(7);

    const shown = await run(['worker:scale', '--queue', 'scan']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^scan: 7 jobs at once per worker process \(set at run time; QUEUE_CONCURRENCY 5\)\n1 worker process online/);
    expect(shown.stdout).toMatch(/HOST\s+PID\s+CONCURRENCY\n/);

    const reset = await json(['worker:scale', '--queue=scan', '--reset']);
    expect(reset).toMatchObject({ override: null, concurrency: 5 });
    const again = await run(['worker:scale', '--queue=scan']);
    expect(again.stdout).toMatch(/^scan: 5 jobs at once per worker process \(QUEUE_CONCURRENCY\)/);
  });

  it('worker:scale: usage errors exit 2', async () => {
    for (const args of [['worker:scale', '--count=3'], ['worker:scale', '--queue=scan', '--count=0'], ['worker:scale', '--queue=scan', '--count=1001'], ['worker:scale', '--queue=mail', '--count=2'], ['worker:scale', '--queue=scan', '--count=2', '--reset']]) {
      const r = await run(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
    }
  });

  it('queue:throttle-org --org=acme --max=5 --per=1m --ttl=1h, on one queue or all; --reset ends it', async () => {
    const before = Date.now();
    const all = await json(['queue:throttle-org', '--org=acme', '--max=5', '--per=1m', '--ttl=1h']);
    expect(all).toMatchObject({ tenant: 'acme', throttle: { max: 5, perMs: 60_000, queues: ['backup', 'scan', 'update'] } });
    const expires = Date.parse(all.throttle.expiresAt as string) - before;
    expect(expires).toBeGreaterThan(3590_000);
    expect(expires).toBeLessThanOrEqual(3601_000);

    const human = await run(['queue:throttle-org', '--org', 'acme', '--max', '2', '--per', '30s', '--ttl', '600', '--queue', 'scan']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^acme: at most 2 job starts per 30s in scan until \S+Z \(started in the window: scan 0\)\n$/);
    const limits = (await app.inject({ url: '/api/tenants/acme/limits', headers: { authorization: `Bearer ${admin}` } })).json().data;
    expect(limits.throttle).toMatchObject({ max: 2, perMs: 30_000, queues: ['scan'] });
    expect(Date.parse(limits.throttle.expiresAt as string) - Date.now()).toBeLessThanOrEqual(600_000);

    const reset = await run(['queue:throttle-org', '--org=acme', '--reset']);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toContain('acme: not throttled');
    expect((await app.inject({ url: '/api/tenants/acme/limits', headers: { authorization: `Bearer ${admin}` } })).json().data.throttle).toBeNull();
  });

  it('queue:throttle-org: usage errors exit 2', async () => {
    for (const args of [
      ['queue:throttle-org', '--org=acme'],
      ['queue:throttle-org', '--max=5'],
      ['queue:throttle-org', '--org=acme', '--max=0'],
      ['queue:throttle-org', '--org=acme', '--max=5', '--per=soon'],
      ['queue:throttle-org', '--org=acme', '--max=5', '--per=500ms'],
      ['queue:throttle-org', '--org=acme', '--max=5', '--reset'],
      ['queue:throttle-org', '--org=acme', '--max=5', '--queue=mail'],
    ]) {
      const r = await run(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
    }
  });

  it('each has its npm run alias, as the guide calls them (npm run worker:scale -- --queue=scan --count=5)', () => {
    const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const name of ['worker:scale', 'queue:throttle-org']) expect(scripts[name], name).toBe(`node bin/jobsctl.js ${name}`);
  });
});
