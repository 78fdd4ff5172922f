import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

const node = process.execPath;
const ACME = auth({ tenant: 'acme' });
const ROOT = auth(ADMIN);
/** An update command that runs until it is cancelled. */
const FOREVER = [node, '-e', 'setInterval(() => {}, 1000)'];

type Reason = { code: string; message: string } & Record<string, unknown>;
type Explanation = { jobId: string; queue: string; state: string; held: boolean; summary: string; attempts: number; maxAttempts: number; failedReason: string | null; reasons: Reason[] };

async function explain(app: FastifyInstance, id: string, headers = ACME): Promise<Explanation> {
  const res = await app.inject({ url: `/api/jobs/${id}/explain`, headers });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json().success).toBe(true);
  return res.json().data as Explanation;
}

/** The explanation once the job is held (one cycling through delayed, waiting and a moment of active may be caught running). */
async function explainHeld(app: FastifyInstance, id: string, headers = ACME): Promise<Explanation> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const e = await explain(app, id, headers);
    if (e.held || Date.now() > deadline) return e;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function post(app: FastifyInstance, url: string, payload: object = {}, headers = ACME): Promise<string> {
  const res = await app.inject({ method: 'POST', url, headers, payload });
  expect(res.statusCode, res.body).toBeLessThan(300);
  return res.json().data.jobId as string;
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const logLines = async (app: FastifyInstance, id: string) => (await app.inject({ url: `/api/jobs/${id}/logs?limit=1000`, headers: ROOT })).json().data.lines as string[];
const codes = (e: Explanation) => e.reasons.map((r) => r.code);
const reason = (e: Explanation, code: string) => e.reasons.find((r) => r.code === code)!;

describe('GET /api/jobs/:id/explain: delays, retries, the rate limit, a paused queue and the line', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await makeApp({
      env: { QUEUE_RATE_LIMITS: 'scan=1/1m', RETRY_BACKOFF_MS: '600000', RETRY_BACKOFF_MAX_MS: '600000' },
      servers: [
        { id: 'web', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'flaky', tenant: 'acme', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: mirror down'); process.exit(3)"] } },
        { id: 'noop', tenant: 'acme', host: '127.0.0.1', update: { command: [node, '-e', '0'] } },
      ],
    });
  });
  afterAll(() => app.close());

  it('a completed job is not held; the next scan waits for the queue\'s rate limit, then is next in line', async () => {
    const first = await post(app, '/api/servers/web/scan', { scan_type: 'quick' });
    await waitForJob(app, first);
    const done = await explain(app, first);
    expect(done).toMatchObject({ jobId: first, queue: 'scan', state: 'completed', held: false, reasons: [] });
    expect(done.summary).toMatch(/^it completed at .*: nothing holds it$/);

    // scan=1/1m: the first scan used the window; the second waits for it to end.
    const second = await post(app, '/api/servers/web/scan', { scan_type: 'quick' });
    const before = Date.now();
    const e = await explain(app, second);
    expect(e).toMatchObject({ state: 'waiting', held: true });
    expect(codes(e)).toEqual(['RATE_LIMITED', 'WAITING_IN_LINE']);
    const limited = reason(e, 'RATE_LIMITED');
    expect(limited).toMatchObject({ queue: 'scan', max: 1, durationMs: 60_000 });
    const until = Date.parse(limited.until as string);
    expect(until).toBeGreaterThan(before);
    expect(until).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(limited.message).toContain('rate limit (1 job per 1 min) is reached');
    expect(reason(e, 'WAITING_IN_LINE')).toMatchObject({ queue: 'scan', priority: 3, position: 1, samePriority: 1, ahead: 0 });
    expect(reason(e, 'WAITING_IN_LINE').message).toContain('it is next in line');
  });

  it('a job enqueued with a delay is due at its creation plus the delay (the rate limit does not hold it yet)', async () => {
    const id = await post(app, '/api/jobs', { type: 'scan:quick', data: { serverId: 'web' }, options: { delay: 60_000 } });
    const e = await explain(app, id);
    expect(e).toMatchObject({ state: 'delayed', held: true });
    expect(codes(e)).toEqual(['DELAYED']);
    const created = (await app.inject({ url: `/api/jobs/${id}`, headers: ACME })).json().data.createdAt as string;
    expect(reason(e, 'DELAYED').until).toBe(new Date(Date.parse(created) + 60_000).toISOString());
    expect(reason(e, 'DELAYED').message).toMatch(/^it was enqueued with a delay of 1 min: it is due at \S+ \(in (\d+ s|1 min)\)$/);
  });

  it('a job whose first attempt failed waits for its retry: attempt 1 of 2, and when the next starts', async () => {
    const id = await post(app, '/api/servers/flaky/update', { options: { attempts: 2 } });
    await waitForJob(app, id, ['delayed']);
    const e = await explain(app, id);
    expect(e).toMatchObject({ state: 'delayed', held: true, attempts: 1, maxAttempts: 2 });
    expect(codes(e)).toEqual(['RETRY_BACKOFF']);
    const r = reason(e, 'RETRY_BACKOFF');
    expect(r).toMatchObject({ attemptsMade: 1, maxAttempts: 2, failedReason: expect.stringContaining('exited with code 3') });
    // Full jitter below RETRY_BACKOFF_MS: some time in the next ten minutes.
    expect(Date.parse(r.until as string)).toBeGreaterThan(Date.now());
    expect(Date.parse(r.until as string)).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(r.message).toMatch(/^attempt 1 of 2 failed \(update command exited with code 3; last output: E: mirror down\): attempt 2 is due at \S+ \(in .+\)$/);
  });

  it('a job that failed for good is not held: its reason and attempts', async () => {
    const id = await post(app, '/api/servers/flaky/update', { options: { attempts: 1 } });
    await waitForJob(app, id);
    const e = await explain(app, id);
    expect(e).toMatchObject({ state: 'failed', held: false, reasons: [], attempts: 1, maxAttempts: 1, failedReason: expect.stringContaining('exited with code 3') });
    expect(e.summary).toMatch(/^it failed for good at .* after 1 of 1 attempts \(update command exited with code 3/);
  });

  it('a paused queue holds every waiting job: the one ready has its place in line, the others wait their tenant\'s turn', async () => {
    expect((await app.inject({ method: 'POST', url: '/api/queues/update/pause', headers: ROOT })).statusCode).toBe(200);
    try {
      // The update queue runs one job at a time: the first job is ready (its tenant's one slot reserved), the rest are parked.
      const critical = [];
      for (let i = 0; i < 3; i++) critical.push(await post(app, '/api/servers/noop/update'));
      const background = await post(app, '/api/servers/noop/update', { options: { priority: 5 } });

      const first = await explain(app, critical[0]!);
      expect(first).toMatchObject({ state: 'waiting', held: true });
      expect(codes(first)).toEqual(['QUEUE_PAUSED', 'WAITING_IN_LINE']);
      expect(reason(first, 'QUEUE_PAUSED')).toMatchObject({ queue: 'update' });
      expect(reason(first, 'QUEUE_PAUSED').message).toContain('POST /api/queues/update/resume');
      expect(reason(first, 'WAITING_IN_LINE')).toMatchObject({ priority: 1, position: 1, samePriority: 1, ahead: 0 });
      expect(reason(first, 'WAITING_IN_LINE').message).toBe('it is number 1 of the 1 waiting update job of priority 1 (critical): it is next in line');

      const third = await explain(app, critical[2]!);
      expect(third).toMatchObject({ state: 'waiting', held: true });
      expect(codes(third)).toEqual(['QUEUE_PAUSED', 'TENANT_AT_CAP', 'TENANT_TURN']);
      expect(reason(third, 'TENANT_AT_CAP')).toMatchObject({ cap: 1, active: 1, holders: [critical[0]] });
      expect(reason(third, 'TENANT_TURN')).toMatchObject({ queue: 'update', tenant: 'acme', position: 2, ahead: 1, tenants: 1 });
      expect(reason(third, 'TENANT_TURN').message).toBe(
        "it waits for its tenant's turn: it is number 2 of tenant acme's 3 update jobs waiting for a slot; each slot that frees goes to the next tenant in turn, within each tenant's cap",
      );
      // Parked by priority, then by arrival: the background job is last of its tenant's.
      expect(reason(await explain(app, background), 'TENANT_TURN')).toMatchObject({ position: 3, ahead: 2 });
      // Counted as waiting, parked or not.
      const status = (await app.inject({ url: '/api/queues/update', headers: ROOT })).json().data;
      expect(status.counts.waiting).toBe(4);
    } finally {
      await app.inject({ method: 'POST', url: '/api/queues/update/drain', headers: ROOT, payload: {} });
      await app.inject({ method: 'POST', url: '/api/queues/update/resume', headers: ROOT });
    }
  });

  it('another tenant\'s job is a 404 exactly like GET /api/jobs/:id; an admin may explain any job', async () => {
    const id = await post(app, '/api/jobs', { type: 'scan:quick', data: { serverId: 'web' }, options: { delay: 60_000 } });
    const other = auth({ tenant: 'other' });
    const [explained, read] = await Promise.all([
      app.inject({ url: `/api/jobs/${id}/explain`, headers: other }),
      app.inject({ url: `/api/jobs/${id}`, headers: other }),
    ]);
    expect(explained.statusCode).toBe(404);
    const { requestId: _a, ...body } = explained.json();
    const { requestId: _b, ...readBody } = read.json();
    expect(body).toEqual(readBody);
    expect(body.error.code).toBe('JOB_NOT_FOUND');
    expect((await app.inject({ url: '/api/jobs/scan_doesnotexist0000000000/explain', headers: ACME })).statusCode).toBe(404);
    expect((await app.inject({ url: `/api/jobs/${id}/explain` })).statusCode).toBe(401);
    expect((await explain(app, id, ROOT)).jobId).toBe(id);
  });
});

describe('GET /api/jobs/:id/explain: the tenant\'s cap', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // Two updates at once per process, one per tenant.
    app = await makeApp({
      env: { TENANT_MAX_ACTIVE: '1', QUEUE_CONCURRENCY: 'update=2' },
      servers: [
        { id: 'one', tenant: 'acme', host: '127.0.0.1', update: { command: FOREVER, timeoutSec: 600 } },
        { id: 'two', tenant: 'acme', host: '127.0.0.1', update: { command: FOREVER, timeoutSec: 600 } },
      ],
    });
  });
  afterAll(() => app.close());

  it('names the job that holds the tenant\'s only slot; the running one is not held', async () => {
    const running = await post(app, '/api/servers/one/update');
    await until('the first update to run', async () => (await waitForJob(app, running, ['active'])).progress >= 20 && true);
    const second = await post(app, '/api/servers/two/update');
    try {
      // Fair dispatch parks it for its tenant's turn (or, had a worker taken it first, puts it back there).
      const e = await until('the second update to wait for a slot', async () => {
        const x = await explain(app, second);
        return codes(x).includes('TENANT_TURN') ? x : undefined;
      });
      expect(e.held).toBe(true);
      expect(e.state).toBe('waiting');
      expect(codes(e)).toEqual(['TENANT_AT_CAP', 'TENANT_TURN']);
      expect(reason(e, 'TENANT_TURN')).toMatchObject({ tenant: 'acme', position: 1, ahead: 0, tenants: 1 });
      expect(reason(e, 'TENANT_AT_CAP')).toMatchObject({ queue: 'update', tenant: 'acme', cap: 1, active: 1, holders: [running] });
      expect(reason(e, 'TENANT_AT_CAP').message).toBe(`tenant acme has 1 of its 1 active update job running (${running}): this job starts when one of them ends`);

      const active = await explain(app, running);
      expect(active).toMatchObject({ state: 'active', held: false, reasons: [], attempts: 1 });
      expect(active.summary).toMatch(/^it is running \(attempt 1 of \d+, started at .*\): nothing holds it$/);
    } finally {
      for (const id of [second, running]) await app.inject({ method: 'POST', url: `/api/jobs/${id}/cancel`, headers: ACME });
    }
  });
});

describe('GET /api/jobs/:id/explain: a server\'s lock', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // Two updates at once per process, both for the one tenant: only the server's lock keeps two of one server apart.
    app = await makeApp({
      env: { TENANT_MAX_SHARE: '1', QUEUE_CONCURRENCY: 'update=2' },
      servers: [{ id: 'db', tenant: 'acme', host: '127.0.0.1', update: { command: FOREVER, timeoutSec: 600 } }],
    });
  });
  afterAll(() => app.close());

  it('names the job that holds it', async () => {
    const first = await post(app, '/api/servers/db/update');
    await until('the first update to run', async () => (await waitForJob(app, first, ['active'])).progress >= 20 && true);
    const second = await post(app, '/api/servers/db/update');
    try {
      await until('the second update to wait for the lock', async () => (await logLines(app, second)).some((l) => l.startsWith(`[jobs-api] waiting: job ${first} holds the update lock of server db`)));
      const e = await explainHeld(app, second);
      expect(codes(e)).toContain('SERVER_LOCKED');
      expect(codes(e)).not.toContain('DELAYED');
      expect(codes(e)).not.toContain('TENANT_AT_CAP');
      expect(reason(e, 'SERVER_LOCKED')).toMatchObject({ queue: 'update', serverId: 'db', holder: first });
      expect(reason(e, 'SERVER_LOCKED').message).toBe(`job ${first} holds the update lock of server db (one update job at a time per server): this job starts when it ends`);
    } finally {
      for (const id of [second, first]) await app.inject({ method: 'POST', url: `/api/jobs/${id}/cancel`, headers: ACME });
    }
  });
});

describe('GET /api/jobs/:id/explain: no worker', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await makeApp({ env: { WORKERS: 'off' }, servers: [{ id: 'web', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }] });
  });
  afterAll(() => app.close());

  it('says no live worker process serves the queue', async () => {
    const id = await post(app, '/api/servers/web/scan', { scan_type: 'quick' });
    const e = await explain(app, id);
    expect(e).toMatchObject({ state: 'waiting', held: true });
    expect(codes(e)).toEqual(['NO_WORKER', 'WAITING_IN_LINE']);
    expect(reason(e, 'NO_WORKER')).toMatchObject({ queue: 'scan' });
    expect(reason(e, 'NO_WORKER').message).toContain('no live worker process serves the scan queue');
    expect(reason(e, 'WAITING_IN_LINE')).toMatchObject({ position: 1, samePriority: 1, ahead: 0 });
  });
});
