import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postWebhook } from '../../src/webhooks/deliver.js';
import { deliveryBackoffMs, DELIVERY_WINDOW_MS } from '../../src/webhooks/events.js';
import { redisKeys } from '../../src/redis/keys.js';
import { auth, makeApp, waitForJob } from '../helpers.js';

const OPS = auth({ tenant: 'ops' });
const GLOBEX = auth({ tenant: 'globex' });
const READER = auth({ tenant: 'ops', scope: 'jobs:read' });

type Received = { path: string; headers: http.IncomingHttpHeaders; body: string; json: { type: string; timestamp: string; data: Record<string, unknown> } };

/** A real receiver on 127.0.0.1: records every request; `answer` picks the status (default 200). */
async function startReceiver() {
  const received: Received[] = [];
  let answer: (r: Received, seen: Received[]) => number = () => 200;
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r: Received = { path: req.url ?? '', headers: req.headers, body, json: JSON.parse(body) };
      const status = answer(r, received);
      received.push(r);
      res.writeHead(status).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    answerWith(f: typeof answer) {
      answer = f;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Standard Webhooks verification, written here from the specification (not with the product's code). */
function signaturesValid(r: Received, secret: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${String(r.headers['webhook-id'])}.${String(r.headers['webhook-timestamp'])}.${r.body}`).digest('base64');
  return String(r.headers['webhook-signature'])
    .split(' ')
    .some((s) => s === `v1,${expected}`);
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const node = process.execPath;

describe('webhooks', () => {
  let app: FastifyInstance;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    app = await makeApp({
      env: { WEBHOOK_ALLOW_PRIVATE: 'on', WEBHOOK_BACKOFF_BASE_MS: '50', TENANT_MAX_WEBHOOKS: '3', WEBHOOK_TIMEOUT_MS: '2000' },
      servers: [
        { id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 }, update: { command: [node, '-e', 'process.exit(3)'] } },
        { id: 'slow', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 60 } },
        { id: 'db', tenant: 'globex', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
      ],
    });
  });
  afterAll(async () => {
    await app?.close();
    await receiver?.close();
  });

  const create = (payload: object, headers = OPS) => app.inject({ method: 'POST', url: '/api/webhooks', headers, payload });
  const submit = async (payload: object, headers = OPS) => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers, payload });
    expect(res.statusCode).toBe(202);
    return res.json().data.jobId as string;
  };
  const eventsOf = (jobId: string, path?: string) => receiver.received.filter((r) => r.json.data.jobId === jobId && (!path || r.path === path));

  it('registers, lists, shows and removes webhooks; the secret is shown once; bad input is a 400', async () => {
    const res = await create({ url: `${receiver.url}/tmp`, events: ['job.completed'] });
    expect(res.statusCode).toBe(201);
    const hook = res.json().data;
    expect(hook).toMatchObject({ url: `${receiver.url}/tmp`, events: ['job.completed'], previousSecretExpiresAt: null });
    expect(hook.id).toMatch(/^wh_/);
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(res.headers.location).toBe(`/api/webhooks/${hook.id}`);
    const list = (await app.inject({ url: '/api/webhooks', headers: READER })).json().data;
    expect(list).toEqual([{ id: hook.id, url: hook.url, events: ['job.completed'], createdAt: hook.createdAt, previousSecretExpiresAt: null }]);
    expect(JSON.stringify(list)).not.toContain('whsec_');
    expect((await app.inject({ url: `/api/webhooks/${hook.id}`, headers: OPS })).json().data.id).toBe(hook.id);
    // Reading is jobs:read; changing is jobs:write.
    expect((await create({ url: `${receiver.url}/x`, events: ['job.failed'] }, READER)).statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: `/api/webhooks/${hook.id}`, headers: READER })).statusCode).toBe(403);

    for (const [payload, code, message] of [
      [{ url: 'ftp://example.com/x', events: ['job.failed'] }, 'INVALID_WEBHOOK_URL', /scheme must be http or https/],
      [{ url: 'not a url', events: ['job.failed'] }, 'INVALID_WEBHOOK_URL', /not an absolute URL/],
      [{ url: 'https://u:p@example.com/', events: ['job.failed'] }, 'INVALID_WEBHOOK_URL', /user name or password/],
      [{ url: `${receiver.url}/x`, events: ['job.exploded'] }, 'VALIDATION_ERROR', /events/],
      [{ url: `${receiver.url}/x`, events: [] }, 'VALIDATION_ERROR', /events/],
    ] as const) {
      const bad = await create(payload);
      expect(bad.statusCode, JSON.stringify(payload)).toBe(400);
      expect(bad.json().error).toMatchObject({ code, message: expect.stringMatching(message) });
    }

    // TENANT_MAX_WEBHOOKS=3 here: the fourth is a 429 naming the setting.
    const more = [await create({ url: `${receiver.url}/a`, events: ['job.failed'] }), await create({ url: `${receiver.url}/b`, events: ['job.failed'] })];
    const full = await create({ url: `${receiver.url}/c`, events: ['job.failed'] });
    expect(full.statusCode).toBe(429);
    expect(full.json().error).toMatchObject({ code: 'TOO_MANY_WEBHOOKS', message: expect.stringContaining('TENANT_MAX_WEBHOOKS=3') });
    for (const id of [hook.id, ...more.map((m) => m.json().data.id as string)]) {
      expect((await app.inject({ method: 'DELETE', url: `/api/webhooks/${id}`, headers: OPS })).json().data).toEqual({ id, removed: true });
    }
    expect((await app.inject({ url: `/api/webhooks/${hook.id}`, headers: OPS })).statusCode).toBe(404);
    expect((await app.inject({ url: '/api/webhooks', headers: OPS })).json().data).toEqual([]);
  });

  it('delivers a completed job, signed per Standard Webhooks; a 500 is retried with the same webhook-id; the log shows both attempts', async () => {
    const hook = (await create({ url: `${receiver.url}/ops`, events: ['job.completed', 'job.failed', 'job.cancelled'] })).json().data;
    // The first attempt of every delivery is refused.
    receiver.answerWith((r, seen) => (seen.some((s) => s.headers['webhook-id'] === r.headers['webhook-id']) ? 200 : 500));
    const jobId = await submit({ type: 'scan:quick', data: { serverId: 'web' } });
    const job = await waitForJob(app, jobId);
    expect(job.state).toBe('completed');
    const got = await until('two attempts', () => eventsOf(jobId, '/ops').length >= 2 && eventsOf(jobId, '/ops'));
    const [first, second] = got;
    expect(first!.headers['webhook-id']).toMatch(/^msg_/);
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    for (const r of got) {
      expect(signaturesValid(r, hook.secret)).toBe(true);
      expect(signaturesValid(r, 'whsec_' + Buffer.alloc(32).toString('base64'))).toBe(false);
      expect(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.json).toEqual({
        type: 'job.completed',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        data: { jobId, type: 'scan:quick', state: 'completed', result: job.result },
      });
    }
    expect(second!.body).toBe(first!.body);
    const deliveries = async (id = hook.id, headers = OPS) => (await app.inject({ url: `/api/webhooks/${id}/deliveries`, headers })).json().data;
    const log = await until('both attempts in the log', async () => {
      const entries = await deliveries();
      return entries.length >= 2 && entries;
    });
    expect(log).toEqual([
      { id: first!.headers['webhook-id'], event: 'job.completed', jobId, attempt: 2, status: 'delivered', statusCode: 200, error: null, at: expect.any(String), durationMs: expect.any(Number) },
      { id: first!.headers['webhook-id'], event: 'job.completed', jobId, attempt: 1, status: 'retrying', statusCode: 500, error: 'HTTP 500 Internal Server Error', at: expect.any(String), durationMs: expect.any(Number) },
    ]);
    // Delivered once: no third request comes.
    await new Promise((r) => setTimeout(r, 500));
    expect(eventsOf(jobId, '/ops')).toHaveLength(2);
  });

  it('sends job.failed only when a job has failed for good, not for an attempt that is retried; a cancel is job.cancelled', async () => {
    receiver.answerWith(() => 200);
    const jobId = await submit({ type: 'update:server', data: { serverId: 'web' }, options: { attempts: 2 } });
    // The first attempt fails and the job waits for its retry (full jitter: anywhere within 5 s): no event while it waits.
    await waitForJob(app, jobId, ['delayed']);
    await new Promise((r) => setTimeout(r, 1000));
    const seenWhileWaiting = eventsOf(jobId);
    if ((await app.jobs.store.get(jobId, undefined))?.state === 'delayed') expect(seenWhileWaiting).toEqual([]);
    const failed = await waitForJob(app, jobId, ['failed']);
    const got = await until('job.failed', () => eventsOf(jobId).length > 0 && eventsOf(jobId));
    await new Promise((r) => setTimeout(r, 500));
    expect(eventsOf(jobId)).toHaveLength(1);
    expect(got[0]!.json).toMatchObject({ type: 'job.failed', data: { jobId, type: 'update:server', state: 'failed', failedReason: failed.failedReason } });
    expect(got[0]!.json.data).not.toHaveProperty('result');

    const slow = await submit({ type: 'update:server', data: { serverId: 'slow' } });
    await waitForJob(app, slow, ['active']);
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${slow}/cancel`, headers: OPS })).statusCode).toBeLessThan(300);
    const cancelled = await until('job.cancelled', () => eventsOf(slow).length > 0 && eventsOf(slow));
    expect(cancelled.map((r) => r.json)).toEqual([
      { type: 'job.cancelled', timestamp: expect.any(String), data: { jobId: slow, type: 'update:server', state: 'cancelled', failedReason: 'cancelled' } },
    ]);

    // Cancelled before it started: the job is removed, and the event says so.
    const later = await submit({ type: 'scan:quick', data: { serverId: 'web' }, options: { delay: 60_000 } });
    await waitForJob(app, later, ['delayed']);
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${later}/cancel`, headers: OPS })).json().data.outcome).toBe('removed');
    const early = await until('job.cancelled of a delayed job', () => eventsOf(later).length > 0 && eventsOf(later));
    expect(early.map((r) => r.json)).toEqual([
      { type: 'job.cancelled', timestamp: expect.any(String), data: { jobId: later, type: 'scan:quick', state: 'removed', previousState: 'delayed', failedReason: 'cancelled' } },
    ]);
  });

  it('after a rotation, deliveries carry two signatures (new and old secret) and the webhook says until when', async () => {
    receiver.answerWith(() => 200);
    const hook = (await app.inject({ url: '/api/webhooks', headers: OPS })).json().data.find((h: { url: string }) => h.url.endsWith('/ops'));
    const before = await until('an earlier delivery', () => receiver.received.find((r) => r.path === '/ops'));
    const rotated = await app.inject({ method: 'POST', url: `/api/webhooks/${hook.id}/rotate-secret`, headers: OPS });
    expect(rotated.statusCode).toBe(200);
    const { secret, previousSecretExpiresAt } = rotated.json().data;
    expect(secret).toMatch(/^whsec_/);
    const expires = Date.parse(previousSecretExpiresAt) - Date.now();
    expect(expires).toBeGreaterThan(23.9 * 3600_000);
    expect(expires).toBeLessThanOrEqual(24 * 3600_000);
    expect((await app.inject({ url: `/api/webhooks/${hook.id}`, headers: OPS })).json().data.previousSecretExpiresAt).toBe(previousSecretExpiresAt);

    const jobId = await submit({ type: 'scan:quick', data: { serverId: 'web' } });
    const [r] = await until('a delivery after the rotation', () => eventsOf(jobId).length > 0 && eventsOf(jobId));
    const signatures = String(r!.headers['webhook-signature']).split(' ');
    expect(signatures).toHaveLength(2);
    expect(signatures.every((s) => s.startsWith('v1,'))).toBe(true);
    expect(signaturesValid(r!, secret)).toBe(true);
    // The secret from before the rotation: which the earlier delivery was signed with, and which still verifies.
    const oldSecret = (await app.webhooks.store.get(hook.id, 'ops'))!.previousSecret!;
    expect(signaturesValid(before, oldSecret)).toBe(true);
    expect(signaturesValid(r!, oldSecret)).toBe(true);
    expect(oldSecret).not.toBe(secret);
  });

  it('keeps tenants apart: another tenant\'s webhook is a 404, and a tenant gets only its own jobs\' events', async () => {
    const ops = (await app.inject({ url: '/api/webhooks', headers: OPS })).json().data[0];
    for (const [method, url] of [
      ['GET', `/api/webhooks/${ops.id}`],
      ['DELETE', `/api/webhooks/${ops.id}`],
      ['POST', `/api/webhooks/${ops.id}/rotate-secret`],
      ['GET', `/api/webhooks/${ops.id}/deliveries`],
    ] as const) {
      const res = await app.inject({ method, url, headers: GLOBEX });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
      expect(res.json().error.code).toBe('WEBHOOK_NOT_FOUND');
    }
    expect((await app.inject({ url: '/api/webhooks', headers: GLOBEX })).json().data).toEqual([]);
    expect((await app.inject({ url: `/api/webhooks/${ops.id}`, headers: OPS })).statusCode).toBe(200);

    const globexHook = (await create({ url: `${receiver.url}/globex`, events: ['job.completed'] }, GLOBEX)).json().data;
    const progressHook = (await create({ url: `${receiver.url}/progress`, events: ['job.progress'] })).json().data;
    const theirs = await submit({ type: 'scan:quick', data: { serverId: 'db' } }, GLOBEX);
    const ours = await submit({ type: 'scan:quick', data: { serverId: 'web' } });
    await until('globex\'s delivery', () => eventsOf(theirs, '/globex').length > 0);
    await until('ops\'s delivery', () => eventsOf(ours, '/ops').length > 0);
    await until('ops\'s progress', () => eventsOf(ours, '/progress').length > 0);
    await new Promise((r) => setTimeout(r, 500));
    expect(eventsOf(theirs).map((r) => r.path)).toEqual(['/globex']);
    expect(eventsOf(ours, '/globex')).toEqual([]);
    expect(eventsOf(ours, '/progress').every((r) => r.json.type === 'job.progress' && r.json.data.state === 'active' && typeof r.json.data.progress === 'number')).toBe(true);
    expect(signaturesValid(eventsOf(theirs, '/globex')[0]!, globexHook.secret)).toBe(true);
    expect(signaturesValid(eventsOf(ours, '/progress')[0]!, progressHook.secret)).toBe(true);
  });
});

describe('webhook URLs on private addresses (WEBHOOK_ALLOW_PRIVATE off)', () => {
  let app: FastifyInstance;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    app = await makeApp({ env: { WORKERS: 'off' } });
  });
  afterAll(async () => {
    await app?.close();
    await receiver?.close();
  });

  it('refuses loopback, link-local and private addresses, by address or by name, saying which setting allows them', async () => {
    for (const url of [receiver.url, 'http://[::1]:8080/', 'http://169.254.169.254/latest/meta-data', 'https://10.1.2.3/', 'http://192.168.0.10/', 'http://[::ffff:127.0.0.1]/', 'http://localhost:9/hook']) {
      const res = await app.inject({ method: 'POST', url: '/api/webhooks', headers: OPS, payload: { url, events: ['job.failed'] } });
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'WEBHOOK_ADDRESS_REFUSED', message: expect.stringContaining('WEBHOOK_ALLOW_PRIVATE=on') });
    }
    expect((await app.inject({ url: '/api/webhooks', headers: OPS })).json().data).toEqual([]);
  });

  it('refuses at delivery time too, on the address the name resolves to then (DNS rebinding), and sends nothing', async () => {
    const port = new URL(receiver.url).port;
    for (const url of [`http://localhost:${port}/hook`, `${receiver.url}/hook`]) {
      const out = await postWebhook(url, {}, '{}', { timeoutMs: 2000, allowPrivate: false });
      expect(out).toMatchObject({ ok: false, final: true, statusCode: null, error: expect.stringContaining('WEBHOOK_ALLOW_PRIVATE=on') });
    }
    expect(receiver.received).toEqual([]);
    // Allowed, the same request goes through; a redirect is not followed (a failed attempt).
    receiver.answerWith(() => 302);
    expect(await postWebhook(`http://localhost:${port}/hook`, {}, '{}', { timeoutMs: 2000, allowPrivate: true })).toMatchObject({ ok: false, final: false, statusCode: 302 });
    expect(receiver.received).toHaveLength(1);
  });

  it('backs off exponentially with full jitter, within a day', () => {
    const t0 = Date.now();
    expect(deliveryBackoffMs(1, 10_000, t0, t0, () => 0.999)).toBe(9990);
    expect(deliveryBackoffMs(3, 10_000, t0, t0, () => 0.5)).toBe(20_000);
    expect(deliveryBackoffMs(3, 10_000, t0, t0, () => 0)).toBe(0);
    // Capped at 6 hours, and never past the day.
    expect(deliveryBackoffMs(30, 10_000, t0, t0, () => 0.999)).toBe(Math.floor(0.999 * 6 * 3600_000));
    expect(deliveryBackoffMs(30, 10_000, t0, t0 + DELIVERY_WINDOW_MS - 1000, () => 0.999)).toBe(1000);
  });

  it('keeps webhook keys on the {webhooks} hash tag, apart from the job queues (Redis Cluster)', () => {
    const k = redisKeys('bull');
    expect(k.webhookQueue).toBe('{webhooks}');
    for (const key of [k.webhook('wh_x'), k.tenantWebhooks('ops'), k.webhookTenants, k.webhookDeliveries('wh_x')]) expect(key).toMatch(/^bull:jobsapi:\{webhooks\}:/);
    expect(k.queueEvents('scan')).toBe('bull:{scan}:events');
    expect(k.webhookCursor('scan')).toBe('bull:jobsapi:{scan}:webhook-cursor');
  });
});
