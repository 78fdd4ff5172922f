import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

describe('rate limits', () => {
  let app: FastifyInstance;
  let second: FastifyInstance;
  const servers = [{ id: 'web', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }];

  beforeAll(async () => {
    const env = { QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}`, API_RATE_LIMIT: '5', API_RATE_WINDOW_MS: '60000', QUEUE_RATE_LIMITS: 'scan=2/1s' };
    app = await makeApp({ env, servers });
    // Another API process on the same Redis: the budget is per tenant, not per process.
    second = await makeApp({ env: { ...env, WORKERS: 'off' }, servers });
  });
  afterAll(async () => {
    await second.close();
    await app.close();
  });

  it('a tenant over its request budget gets 429 with Retry-After; other tenants and probes do not', async () => {
    const acme = auth({ tenant: 'rate-a' });
    const remaining: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await app.inject({ url: '/api/servers', headers: acme });
      expect(res.statusCode).toBe(200);
      remaining.push(String(res.headers['x-ratelimit-remaining']));
    }
    expect(remaining).toEqual(['4', '3', '2', '1']);
    expect((await second.inject({ url: '/api/servers', headers: acme })).statusCode).toBe(200);
    const over = await second.inject({ url: '/api/servers', headers: acme });
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.json()).toMatchObject({ success: false, error: { code: 'RATE_LIMITED', message: expect.stringContaining('at most 5 per 60 s') } });
    expect((await app.inject({ url: '/api/servers', headers: acme })).statusCode).toBe(429);

    expect((await app.inject({ url: '/api/servers', headers: auth({ tenant: 'rate-b' }) })).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('a burst lets exactly the budget through, also once a process answers from the count it knows', async () => {
    // Budget 40: below half of it a process answers from the count Redis gave it last (plus its own since), past half it waits for Redis.
    const env = { QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}`, API_RATE_LIMIT: '40', API_RATE_WINDOW_MS: '60000', WORKERS: 'off' };
    const one = await makeApp({ env, servers });
    const two = await makeApp({ env, servers });
    try {
      const h = auth({ tenant: 'rate-burst' });
      const first = await one.inject({ url: '/api/servers', headers: h });
      expect(first.headers['x-ratelimit-remaining']).toBe('39');
      // Known now: the next ones of this process are counted from it, each with its own remaining count.
      const next = await one.inject({ url: '/api/servers', headers: h });
      expect(next.headers['x-ratelimit-remaining']).toBe('38');
      const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 3 ? one : two).inject({ url: '/api/servers', headers: h })));
      const again = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? one : two).inject({ url: '/api/servers', headers: h })));
      const ok = [first, next, ...burst, ...again].filter((r) => r.statusCode === 200).length;
      expect(ok).toBe(40);
      expect([...burst, ...again].filter((r) => r.statusCode === 429).every((r) => r.json().error.code === 'RATE_LIMITED')).toBe(true);
      expect((await one.inject({ url: '/api/servers', headers: h })).statusCode).toBe(429);
    } finally {
      await two.close();
      await one.close();
    }
  });

  it('counts the route, not the raw URL: a percent-encoded path to the same route spends the same budget', async () => {
    const h = auth({ tenant: 'rate-c' });
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ url: i % 2 ? '/%61pi/servers' : '/api/%73ervers', headers: h });
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-ratelimit-remaining']).toBe(String(4 - i));
    }
    expect((await app.inject({ url: '/%61pi/servers', headers: h })).statusCode).toBe(429);
  });

  it('a queue limiter (QUEUE_RATE_LIMITS) spreads job starts over time', async () => {
    const status = (await app.inject({ url: '/api/queues/scan', headers: auth(ADMIN) })).json().data;
    expect(status.rateLimit).toEqual({ max: 2, duration: 1000 });
    const ids = (await app.queues.scan.addBulk(
      Array.from({ length: 6 }, (_, i) => ({
        name: 'scan:quick',
        data: { tenant: 'acme', requestedBy: 't', recordId: `r${i}`, input: { serverId: 'web' } },
        opts: { jobId: `scan_${String(i).padStart(22, 'L')}` },
      })),
    )).map((j) => j.id!);
    const jobs = await Promise.all(ids.map((id) => waitForJob(app, id, ['completed', 'failed'], 20_000)));
    expect(jobs.every((j) => j.state === 'completed')).toBe(true);
    const started = jobs.map((j) => Date.parse(j.processedAt!)).sort((a, b) => a - b);
    // Two a second: the fifth starts two intervals after the first.
    expect(started[4]! - started[0]!).toBeGreaterThanOrEqual(1800);
  });

  it('refuses a malformed QUEUE_RATE_LIMITS at start, naming the part', () => {
    expect(() => loadConfig({ QUEUE_RATE_LIMITS: 'scan=100/1s,mail=5/1m' })).toThrow(/QUEUE_RATE_LIMITS: "mail=5\/1m" should be queue=max\/interval/);
    expect(loadConfig({ QUEUE_RATE_LIMITS: 'scan=100/1s, backup=5/1m' }).queueRateLimits).toEqual({ scan: { max: 100, duration: 1000 }, backup: { max: 5, duration: 60_000 } });
    expect(loadConfig({}).apiRateLimit).toEqual({ max: 6000, windowMs: 60_000 });
  });
});
