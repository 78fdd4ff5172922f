import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp } from '../helpers.js';
import { nodesOf } from '../../src/redis/connection.js';

const ACME = auth({ tenant: 'acme' });

describe('Idempotency-Key on enqueues', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await makeApp({
      env: { WORKERS: 'off' },
      servers: [
        { id: 'web', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1] } },
        { id: 'web-g', tenant: 'globex', host: '127.0.0.1', scan: { ports: [1] } },
      ],
    });
  });
  afterAll(() => app.close());

  const submit = (key: string | undefined, payload: object, headers = ACME, url = '/api/jobs') =>
    app.inject({ method: 'POST', url, headers: { ...headers, ...(key ? { 'idempotency-key': key } : {}) }, payload });
  const scans = async (tenant = 'acme') => (await app.jobs.store.list({ tenant, limit: 100 })).jobs.length;

  it('a repeat is answered only after authentication and authorization: no token 401, a read-only token 403, never the stored job', async () => {
    const body = { type: 'scan:quick', data: { serverId: 'web-g' } };
    const first = await submit('order-auth', body, auth({ tenant: 'globex' }));
    expect(first.statusCode).toBe(202);
    const anonymous = await submit('order-auth', body, {} as typeof ACME);
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.body).not.toContain(first.json().data.jobId);
    const reader = await submit('order-auth', body, auth({ tenant: 'globex', scope: 'jobs:read' }));
    expect(reader.statusCode).toBe(403);
    expect(reader.body).not.toContain(first.json().data.jobId);
  });

  it('a repeat answers 200 with the job the key first created', async () => {
    const body = { type: 'scan:quick', data: { serverId: 'web' } };
    const first = await submit('order-1', body);
    expect(first.statusCode).toBe(202);
    const again = await submit('order-1', body);
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().data.jobId).toBe(first.json().data.jobId);
    expect(again.headers.location).toBe(first.headers.location);
    expect(await scans()).toBe(1);
  });

  it('the same key with another body is a 422; another tenant\'s key of that name is its own', async () => {
    const res = await submit('order-1', { type: 'scan:full', data: { serverId: 'web' } });
    expect(res.statusCode).toBe(422);
    expect(res.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const other = await submit('order-1', { type: 'scan:quick', data: { serverId: 'web-g' } }, auth({ tenant: 'globex' }));
    expect(other.statusCode).toBe(202);
  });

  it('concurrent requests with one key create one job', async () => {
    const before = await scans();
    const body = { type: 'scan:full', data: { serverId: 'web' } };
    const all = await Promise.all(Array.from({ length: 20 }, () => submit('burst-7', body)));
    expect(all.map((r) => r.statusCode).sort()).toEqual([...Array(19).fill(200), 202].sort());
    expect(new Set(all.map((r) => r.json().data.jobId)).size).toBe(1);
    expect(await scans()).toBe(before + 1);
  });

  it('works on the per-server routes and on bulk', async () => {
    const a = await submit('srv-1', {}, ACME, '/api/servers/web/scan');
    const b = await submit('srv-1', {}, ACME, '/api/servers/web/scan');
    expect([a.statusCode, b.statusCode]).toEqual([202, 200]);
    expect(b.json().data.scanId).toBe(a.json().data.scanId);
    // The same key on another route is another request.
    expect((await submit('srv-1', { type: 'scan:quick', data: { serverId: 'web' } })).statusCode).toBe(422);

    const jobs = { jobs: [{ type: 'scan:quick', data: { serverId: 'web' } }, { type: 'scan:full', data: { serverId: 'web' } }] };
    const c = await submit('bulk-1', jobs, ACME, '/api/jobs/bulk');
    const d = await submit('bulk-1', jobs, ACME, '/api/jobs/bulk');
    expect([c.statusCode, d.statusCode]).toEqual([202, 200]);
    expect(d.json().data.jobs.map((j: { jobId: string }) => j.jobId)).toEqual(c.json().data.jobs.map((j: { jobId: string }) => j.jobId));
  });

  it('a refused first request frees its key; a malformed key is a 400', async () => {
    const bad = await submit('fix-me', { type: 'scan:quick', data: { serverId: 'nope' } });
    expect(bad.statusCode).toBe(400);
    const good = await submit('fix-me', { type: 'scan:quick', data: { serverId: 'web' } });
    expect(good.statusCode).toBe(202);
    const long = await submit('x'.repeat(300), { type: 'scan:quick', data: { serverId: 'web' } });
    expect(long.statusCode).toBe(400);
    expect(long.json().error.message).toMatch(/idempotency-key/);
    // Without a key every request is its own job.
    const n = await scans();
    await submit(undefined, { type: 'scan:quick', data: { serverId: 'web' } });
    await submit(undefined, { type: 'scan:quick', data: { serverId: 'web' } });
    expect(await scans()).toBe(n + 2);
  });
});

describe('quotas a tenant cannot break', () => {
  const servers = [
    { id: 'web', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1] } },
    { id: 'web-g', tenant: 'globex', host: '127.0.0.1', scan: { ports: [1] } },
  ];

  it('TENANT_MAX_QUEUED: jobs waiting to start beyond the limit are a 429 QUOTA_EXCEEDED (bulk: all or none); other tenants unaffected; room comes back', async () => {
    const app = await makeApp({ env: { WORKERS: 'off', TENANT_MAX_QUEUED: '5' }, servers });
    try {
      const one = (tenant: string, serverId: string, options: object = {}) =>
        app.inject({ method: 'POST', url: '/api/jobs', headers: auth({ tenant }), payload: { type: 'scan:quick', data: { serverId }, options } });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await one('acme', 'web', i % 2 ? { delay: 60_000 } : {})).json().data.jobId);
      const bulk = await app.inject({ method: 'POST', url: '/api/jobs/bulk', headers: ACME, payload: { jobs: [0, 1].map(() => ({ type: 'scan:quick', data: { serverId: 'web' } })) } });
      expect(bulk.statusCode).toBe(429);
      expect(bulk.json().error).toMatchObject({ code: 'QUOTA_EXCEEDED', message: expect.stringContaining('at most 5 may wait (TENANT_MAX_QUEUED)') });
      expect((await one('acme', 'web')).statusCode).toBe(202);
      const over = await one('acme', 'web');
      expect(over.statusCode).toBe(429);
      expect(over.headers['retry-after']).toBeDefined();
      expect((await one('globex', 'web-g')).statusCode).toBe(202);
      // A job removed makes room again.
      expect((await app.inject({ method: 'DELETE', url: `/api/jobs/${ids[0]}`, headers: ACME })).statusCode).toBe(200);
      expect((await one('acme', 'web')).statusCode).toBe(202);
    } finally {
      await app.close();
    }
  });

  it('TENANT_MAX_QUEUED: a tenant that keeps knocking at its limit does not make Redis recount its waiting jobs on every refusal', async () => {
    const app = await makeApp({ env: { WORKERS: 'off', TENANT_MAX_QUEUED: '300' }, servers });
    const hmgets = async () => {
      let calls = 0;
      for (const node of nodesOf(app.redis)) calls += Number(/cmdstat_hmget:calls=(\d+)/.exec(String(await node.info('commandstats')))?.[1] ?? 0);
      return calls;
    };
    try {
      const jobs = Array.from({ length: 300 }, () => ({ type: 'scan:quick', data: { serverId: 'web' } }));
      expect((await app.inject({ method: 'POST', url: '/api/jobs/bulk', headers: ACME, payload: { jobs } })).statusCode).toBe(202);
      const before = await hmgets();
      const refused = await Promise.all(
        Array.from({ length: 100 }, () => app.inject({ method: 'POST', url: '/api/jobs', headers: ACME, payload: { type: 'scan:quick', data: { serverId: 'web' } } })),
      );
      expect(refused.every((r) => r.statusCode === 429)).toBe(true);
      // One exact count (a read of each waiting job) per second at most, not one per refusal (100 x 300 reads).
      expect((await hmgets()) - before).toBeLessThan(2_000);
    } finally {
      await app.close();
    }
  });

  it('TENANT_MAX_IDEMPOTENCY_KEYS: a new key beyond the stored limit is a 429; repeats of a stored key and requests without one still work', async () => {
    const app = await makeApp({ env: { WORKERS: 'off', TENANT_MAX_IDEMPOTENCY_KEYS: '3' }, servers });
    try {
      const send = (key: string | undefined) =>
        app.inject({ method: 'POST', url: '/api/jobs', headers: { ...ACME, ...(key ? { 'idempotency-key': key } : {}) }, payload: { type: 'scan:quick', data: { serverId: 'web' } } });
      for (const key of ['k1', 'k2', 'k3']) expect((await send(key)).statusCode).toBe(202);
      const fourth = await send('k4');
      expect(fourth.statusCode).toBe(429);
      expect(fourth.json().error).toMatchObject({ code: 'QUOTA_EXCEEDED', message: expect.stringContaining('TENANT_MAX_IDEMPOTENCY_KEYS') });
      expect((await send('k2')).statusCode).toBe(200);
      expect((await send(undefined)).statusCode).toBe(202);
      const globex = await app.inject({ method: 'POST', url: '/api/jobs', headers: { ...auth({ tenant: 'globex' }), 'idempotency-key': 'k4' }, payload: { type: 'scan:quick', data: { serverId: 'web-g' } } });
      expect(globex.statusCode).toBe(202);
    } finally {
      await app.close();
    }
  });
});
