import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantCap } from '../../src/coordination/tenant-slots.js';
import type { QueueName } from '../../src/jobs/index.js';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

const ROOT = auth(ADMIN);
const node = process.execPath;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Jobs running now, per tenant: active and past the turn (progress 20: its
 * tenant's slot, a GLOBAL_MAX_ACTIVE slot and its server's lock taken), not yet
 * ended (100: what it held is given back before BullMQ marks it completed). A
 * job sent back to wait is active for a moment, at 10.
 */
async function runningNow(app: FastifyInstance, queues: QueueName[]): Promise<Record<string, number> & { total: number }> {
  const out: Record<string, number> & { total: number } = { total: 0 };
  for (const q of queues) {
    for (const j of await app.queues[q].getActive()) {
      const p = Number(j.progress);
      if (p < 20 || p >= 100) continue;
      out[j.data.tenant] = (out[j.data.tenant] ?? 0) + 1;
      out.total += 1;
    }
  }
  return out;
}

/** The most jobs running at once (by tenant, and in all) while `work` goes on. */
async function peakWhile(app: FastifyInstance, queues: QueueName[], work: Promise<unknown>): Promise<Record<string, number> & { total: number }> {
  const peak: Record<string, number> & { total: number } = { total: 0 };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const now = await runningNow(app, queues);
      for (const [k, v] of Object.entries(now)) peak[k] = Math.max(peak[k] ?? 0, v);
      await sleep(50);
    }
  })();
  try {
    await work;
  } finally {
    sampling = false;
    await sampler;
  }
  return peak;
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

const logOf = async (app: FastifyInstance, id: string) => (await app.inject({ url: `/api/jobs/${id}/logs`, headers: ROOT })).json().data.lines as string[];

describe('tenantCap: the cap the slot script applies', () => {
  it('is TENANT_MAX_ACTIVE within the share of the capacity; an override replaces both, within the whole capacity', () => {
    // One process, scan concurrency 5, half: 2.
    expect(tenantCap(10, null, 5, 1, 0.5)).toBe(2);
    expect(tenantCap(1, null, 5, 1, 0.5)).toBe(1);
    // An override above the share: the operator's decision, up to the whole capacity.
    expect(tenantCap(10, 4, 5, 1, 0.5)).toBe(4);
    expect(tenantCap(10, 50, 5, 1, 0.5)).toBe(5);
    expect(tenantCap(10, 50, 5, 3, 0.5)).toBe(15);
    expect(tenantCap(10, 1, 1, 1, 0.5)).toBe(1);
  });
});

describe('worker:scale: a queue\'s concurrency at run time', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    // Three tenants, one server each: a tenant's cap (half of the capacity, at least 1) does not decide here.
    app = await makeApp({
      servers: ['a', 'b', 'c'].map((t) => ({ id: `long-${t}`, tenant: t, host: '127.0.0.1', update: { command: [node, '-e', 'setTimeout(() => {}, 6000)'] } })),
    });
  });
  afterAll(() => app.close());

  const concurrencyOf = async () => (await app.inject({ url: '/api/queues/update/concurrency', headers: ROOT })).json().data;
  const registry = async () => (await app.inject({ url: '/api/workers', headers: ROOT })).json().data.queues.update.concurrency as number;

  it('after PUT concurrency 3 on update, three long updates run at once where one ran; the registry reports 3; DELETE restores 1', async () => {
    expect(await concurrencyOf()).toMatchObject({ queue: 'update', configured: 1, override: null, concurrency: 1, total: 1 });
    const forbidden = await app.inject({ method: 'PUT', url: '/api/queues/update/concurrency', headers: auth({ tenant: 'a' }), payload: { concurrency: 3 } });
    expect(forbidden.statusCode).toBe(403);
    for (const bad of [0, 1001, 2.5]) {
      expect((await app.inject({ method: 'PUT', url: '/api/queues/update/concurrency', headers: ROOT, payload: { concurrency: bad } })).statusCode).toBe(400);
    }
    expect((await app.inject({ method: 'PUT', url: '/api/queues/mail/concurrency', headers: ROOT, payload: { concurrency: 3 } })).statusCode).toBe(400);

    const ids: string[] = [];
    for (const t of ['a', 'b', 'c']) ids.push((await app.inject({ method: 'POST', url: `/api/servers/long-${t}/update`, headers: auth({ tenant: t }) })).json().data.jobId);
    // One at a time, as configured: the first runs, the others wait.
    await until('the first update running', () => runningNow(app, ['update']), (r) => r.total === 1, 10_000);
    await sleep(800);
    expect((await runningNow(app, ['update'])).total).toBe(1);
    const states = await Promise.all(ids.map(async (id) => (await app.jobs.store.get(id, undefined))!.state));
    expect(states.filter((s) => s === 'waiting')).toHaveLength(2);

    const set = await app.inject({ method: 'PUT', url: '/api/queues/update/concurrency', headers: ROOT, payload: { concurrency: 3 } });
    expect(set.statusCode).toBe(200);
    expect(set.json().data).toMatchObject({ queue: 'update', configured: 1, override: 3, concurrency: 3, followWithinMs: 2000 });
    // The worker follows within 2 s and starts the waiting ones while the first still runs.
    const three = await until('three updates running at once', () => runningNow(app, ['update']), (r) => r.total === 3, 4000);
    expect(three).toMatchObject({ a: 1, b: 1, c: 1 });
    expect(app.workers!.update.concurrency).toBe(3);
    await until('the registry reporting 3', registry, (n) => n === 3, 15_000);
    const live = await concurrencyOf();
    expect(live).toMatchObject({ override: 3, concurrency: 3, total: 3 });
    expect(live.processes).toEqual([expect.objectContaining({ pid: process.pid, concurrency: 3 })]);

    const done = await Promise.all(ids.map((id) => waitForJob(app, id, ['completed', 'failed'], 20_000)));
    expect(done.map((j) => [j.state, j.attempts])).toEqual(Array(3).fill(['completed', 1]));

    const reset = await app.inject({ method: 'DELETE', url: '/api/queues/update/concurrency', headers: ROOT });
    expect(reset.json().data).toMatchObject({ configured: 1, override: null, concurrency: 1 });
    await until('the worker back at 1', async () => app.workers!.update.concurrency, (n) => n === 1, 4000);
    await until('the registry reporting 1', registry, (n) => n === 1, 15_000);
  }, 60_000);
});

describe('queue:throttle-org: a tenant\'s job starts per interval', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await makeApp({
      servers: [
        { id: 'acme-web', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'other-web', tenant: 'other', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
      ],
    });
  });
  afterAll(() => app.close());

  const scan = async (tenant: string) =>
    (await app.inject({ method: 'POST', url: `/api/servers/${tenant}-web/scan`, headers: auth({ tenant }), payload: { scan_type: 'quick' } })).json().data.jobId as string;

  it('with max 2 per 1m, the tenant\'s third scan waits its turn (not an attempt, never sent to delayed) while another tenant\'s runs; DELETE lets it start', async () => {
    expect((await app.inject({ method: 'PUT', url: '/api/tenants/acme/throttle', headers: auth({ tenant: 'acme' }), payload: { max: 2 } })).statusCode).toBe(403);
    const set = await app.inject({ method: 'PUT', url: '/api/tenants/acme/throttle', headers: ROOT, payload: { max: 2, perMs: 60_000 } });
    expect(set.statusCode).toBe(200);
    const limit = set.json().data;
    expect(limit.throttle).toMatchObject({ max: 2, perMs: 60_000, queues: ['backup', 'scan', 'update'], started: { backup: 0, scan: 0, update: 0 } });
    // The default time to live: an hour.
    expect(Date.parse(limit.throttle.expiresAt)).toBeGreaterThan(Date.now() + 3500_000);

    const acme = [await scan('acme'), await scan('acme'), await scan('acme')];
    const first = await Promise.all(acme.slice(0, 2).map((id) => waitForJob(app, id, ['completed', 'failed'], 15_000)));
    expect(first.map((j) => j.state)).toEqual(['completed', 'completed']);
    const third = acme[2]!;
    // Parked for its tenant's turn: explain names the throttle.
    const why = await until(
      'the third scan throttled',
      async () => (await app.inject({ url: `/api/jobs/${third}/explain`, headers: ROOT })).json().data,
      (e: { reasons: Array<{ code: string }> }) => e.reasons.some((r) => r.code === 'TENANT_THROTTLED'),
      10_000,
    );
    expect(why).toMatchObject({ state: 'waiting', attempts: 0 });
    const throttled = why.reasons.find((r: { code: string }) => r.code === 'TENANT_THROTTLED') as { code: string; message: string };
    expect(throttled).toMatchObject({ queue: 'scan', tenant: 'acme', max: 2, durationMs: 60_000 });
    expect(throttled.message).toBe('tenant acme is throttled to 2 scan job starts per 1 min (queue:throttle-org) and 2 started in the last 1 min: this job starts when the window frees one');
    expect(why.reasons.map((r: { code: string }) => r.code)).toContain('TENANT_TURN');

    // Another tenant's scan runs meanwhile; the throttled one still waits, never sent to delayed.
    const otherJob = await waitForJob(app, await scan('other'), ['completed', 'failed'], 15_000);
    expect(otherJob.state).toBe('completed');
    expect((await app.jobs.store.get(third, undefined))!.state).toBe('waiting');
    expect((await logOf(app, third)).filter((l) => l.startsWith('[jobs-api] waiting: tenant'))).toEqual([]);
    const read = (await app.inject({ url: '/api/tenants/acme/limits', headers: ROOT })).json().data;
    expect(read.throttle).toMatchObject({ max: 2, started: { scan: 2, backup: 0 } });

    const reset = await app.inject({ method: 'DELETE', url: '/api/tenants/acme/throttle', headers: ROOT });
    expect(reset.json().data.throttle).toBeNull();
    // The next look of dispatch (every second) starts it: one attempt, nothing spent on the wait.
    const done = await waitForJob(app, third, ['completed', 'failed'], 15_000);
    expect([done.state, done.attempts]).toEqual(['completed', 1]);
  }, 60_000);

  it('--queue throttles one queue only; a window of 2 s lets the next start by itself', async () => {
    const set = await app.inject({ method: 'PUT', url: '/api/tenants/other/throttle', headers: ROOT, payload: { max: 1, perMs: 2000, queue: 'scan', ttlSeconds: 60 } });
    expect(set.json().data.throttle).toMatchObject({ max: 1, perMs: 2000, queues: ['scan'], started: { scan: 0 } });
    const started = Date.now();
    const ids = [await scan('other'), await scan('other')];
    const done = await Promise.all(ids.map((id) => waitForJob(app, id, ['completed', 'failed'], 15_000)));
    expect(done.map((j) => [j.state, j.attempts])).toEqual([['completed', 1], ['completed', 1]]);
    const starts = done.map((j) => Date.parse(j.processedAt!)).sort();
    // The second started once the first's start left the 2 s window.
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - started).toBeLessThan(10_000);
    await app.inject({ method: 'DELETE', url: '/api/tenants/other/throttle', headers: ROOT });
  }, 30_000);
});

describe('queue:set-limit above the share, and a capacity that follows worker:scale', () => {
  let app: FastifyInstance;
  let silent: net.Server;

  beforeAll(async () => {
    // Accepts and never answers: each full scan waits its timeout in the TLS handshake (about a second).
    silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    app = await makeApp({ servers: [{ id: 'flood', tenant: 'big', host: '127.0.0.1', scan: { ports: [port], timeoutMs: 1000 } }] });
  });
  afterAll(async () => {
    await app.close();
    silent.close();
  });

  const flood = async (n: number) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await app.inject({ method: 'POST', url: '/api/servers/flood/scan', headers: auth({ tenant: 'big' }), payload: { scan_type: 'full' } })).json().data.jobId);
    return Promise.all(ids.map((id) => waitForJob(app, id, ['completed', 'failed'], 30_000)));
  };
  const limits = async () => (await app.inject({ url: '/api/tenants/big/limits', headers: ROOT })).json().data;

  it('an override of 4 lets the tenant run 4 of the 5 scan slots (more than half); 50 is held to the capacity', async () => {
    expect((await limits()).effective).toMatchObject({ scan: 2 });
    const set = await app.inject({ method: 'PUT', url: '/api/tenants/big/limits', headers: ROOT, payload: { maxActive: 4 } });
    expect(set.json().data).toMatchObject({ override: 4, effective: { scan: 4, backup: 2, update: 1 } });

    const work = flood(6);
    const peak = await peakWhile(app, ['scan'], work);
    expect((await work).every((j) => j.state === 'completed' && j.attempts === 1)).toBe(true);
    expect(peak.big).toBe(4);

    const all = await app.inject({ method: 'PUT', url: '/api/tenants/big/limits', headers: ROOT, payload: { maxActive: 50 } });
    expect(all.json().data.effective).toMatchObject({ scan: 5, backup: 2, update: 1 });
    await app.inject({ method: 'DELETE', url: '/api/tenants/big/limits', headers: ROOT });
  }, 60_000);

  it('the share follows the live concurrency: scan at 8 gives the tenant 4, in the answer and in the workers', async () => {
    await app.inject({ method: 'PUT', url: '/api/queues/scan/concurrency', headers: ROOT, payload: { concurrency: 8 } });
    expect((await limits()).effective).toMatchObject({ scan: 4 });
    await until('the worker at 8', async () => app.workers!.scan.concurrency, (n) => n === 8, 4000);
    const work = flood(6);
    const peak = await peakWhile(app, ['scan'], work);
    expect((await work).every((j) => j.state === 'completed' && j.attempts === 1)).toBe(true);
    expect(peak.big).toBe(4);
    await app.inject({ method: 'DELETE', url: '/api/queues/scan/concurrency', headers: ROOT });
    expect((await limits()).effective).toMatchObject({ scan: 2 });
  }, 60_000);
});

describe('GLOBAL_MAX_ACTIVE: active jobs over every queue', () => {
  let app: FastifyInstance;
  let silent: net.Server;

  beforeAll(async () => {
    silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    app = await makeApp({
      env: { GLOBAL_MAX_ACTIVE: '2' },
      servers: [
        ...['t1', 't2', 't3', 't4'].map((t) => ({ id: `scan-${t}`, tenant: t, host: '127.0.0.1', scan: { ports: [port], timeoutMs: 1000 } })),
        ...['u1', 'u2'].map((t) => ({ id: `upd-${t}`, tenant: t, host: '127.0.0.1', update: { command: [node, '-e', 'setTimeout(() => {}, 1500)'] } })),
      ],
    });
  });
  afterAll(async () => {
    await app.close();
    silent.close();
  });

  it('holds the jobs running at once to 2 across scans and updates; the others wait in delayed, no attempt spent', async () => {
    const ids: string[] = [];
    for (const t of ['t1', 't2', 't3', 't4']) ids.push((await app.inject({ method: 'POST', url: `/api/servers/scan-${t}/scan`, headers: auth({ tenant: t }), payload: { scan_type: 'full' } })).json().data.jobId);
    for (const t of ['u1', 'u2']) ids.push((await app.inject({ method: 'POST', url: `/api/servers/upd-${t}/update`, headers: auth({ tenant: t }) })).json().data.jobId);
    const work = Promise.all(ids.map((id) => waitForJob(app, id, ['completed', 'failed'], 40_000)));
    const peak = await peakWhile(app, ['scan', 'update'], work);
    const done = await work;
    expect(done.map((j) => [j.state, j.attempts])).toEqual(Array(6).fill(['completed', 1]));
    expect(peak.total).toBe(2);
    const logs = (await Promise.all(ids.map((id) => logOf(app, id)))).flat();
    expect(logs.some((l) => l.includes('of the 2 jobs allowed at once over every queue (GLOBAL_MAX_ACTIVE) are running'))).toBe(true);
  }, 60_000);
});
