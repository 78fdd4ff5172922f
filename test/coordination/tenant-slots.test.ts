import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capacityShare } from '../../src/coordination/tenant-slots.js';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

const ROOT = auth(ADMIN);

describe('capacityShare (a tenant\'s cap in a queue)', () => {
  it('is the share of every live worker process\'s concurrency, at least one job', () => {
    // scan runs 5 at a time per process, update 1, backup 2.
    expect(capacityShare(5, 1, 0.5)).toBe(2);
    expect(capacityShare(1, 1, 0.5)).toBe(1);
    expect(capacityShare(2, 4, 0.5)).toBe(4);
    expect(capacityShare(5, 3, 0.5)).toBe(7);
  });

  it('counts at least one process (the one asking) and gives the whole queue with a share of 1', () => {
    expect(capacityShare(5, 0, 1)).toBe(5);
    expect(capacityShare(1, 0, 0.1)).toBe(1);
  });
});

describe('fair scheduling between tenants', () => {
  let app: FastifyInstance;
  let silent: net.Server;

  beforeAll(async () => {
    // Accepts and never answers: each full scan waits its timeout in the TLS handshake (about a second).
    silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    app = await makeApp({
      servers: [
        { id: 'flood', tenant: 'big', host: '127.0.0.1', scan: { ports: [port], timeoutMs: 1000 } },
        { id: 'small', tenant: 'small', host: '127.0.0.1', scan: { ports: [port], timeoutMs: 1000 } },
      ],
    });
  });
  afterAll(async () => {
    await app.close();
    silent.close();
  });

  /**
   * Jobs running per tenant: active, past the fairness check (progress 20) and not done. A job a worker took over
   * its cap is active for a moment, at 10, on its way back to wait; a done one (100) has freed its slot already.
   */
  const activeByTenant = async () => {
    const active = await app.queues.scan.getActive();
    const out: Record<string, number> = {};
    for (const j of active) if (Number(j.progress) >= 20 && Number(j.progress) < 100) out[j.data.tenant] = (out[j.data.tenant] ?? 0) + 1;
    return out;
  };

  it('a flood from one tenant stays within its cap and leaves room for another tenant\'s job', async () => {
    // One process, scan concurrency 5: a tenant may have 2 (half) active.
    const limits = (await app.inject({ url: '/api/tenants/big/limits', headers: ROOT })).json().data;
    expect(limits).toMatchObject({ default: 10, override: null, effective: { scan: 2, backup: 1, update: 1 } });

    const big = auth({ tenant: 'big' });
    const flood: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await app.inject({ method: 'POST', url: '/api/servers/flood/scan', headers: big, payload: { scan_type: 'full' } });
      flood.push(res.json().data.jobId);
    }
    await new Promise((r) => setTimeout(r, 300));
    const res = await app.inject({ method: 'POST', url: '/api/servers/small/scan', headers: auth({ tenant: 'small' }), payload: { scan_type: 'full' } });
    const smallJob = res.json().data.jobId as string;

    let maxBig = 0;
    const sampler = setInterval(() => void activeByTenant().then((a) => (maxBig = Math.max(maxBig, a.big ?? 0))), 100);
    const small = await waitForJob(app, smallJob, ['completed', 'failed'], 15_000);
    const floodLeft = (await Promise.all(flood.map((id) => app.jobs.store.get(id, undefined)))).filter((j) => j?.state !== 'completed').length;
    expect(small.state).toBe('completed');
    // The small tenant's job did not wait for the flood to drain.
    expect(floodLeft).toBeGreaterThan(0);

    const stats = (await app.inject({ url: "/api/tenants/stats", headers: ROOT })).json().data as Array<{ tenant: string; queues: { scan: { waiting: number; delayed: number; active: number; completed: number } } }>;
    const bigStats = stats.find((s) => s.tenant === 'big')!.queues.scan;
    expect(bigStats.waiting + bigStats.delayed + bigStats.active + bigStats.completed).toBe(8);
    expect(stats.find((s) => s.tenant === 'small')!.queues.scan.completed).toBe(1);

    // Every job of the flood runs in the end: none failed, none lost.
    const done = await Promise.all(flood.map((id) => waitForJob(app, id, ['completed', 'failed'], 30_000)));
    clearInterval(sampler);
    expect(done.map((j) => j.state)).toEqual(Array(8).fill('completed'));
    expect(done.every((j) => j.attempts === 1)).toBe(true);
    expect(maxBig).toBe(2);
    const log = (await app.inject({ url: `/api/jobs/${flood[7]}/logs`, headers: big })).json().data.lines as string[];
    // It waited parked for its tenant's turn (fair dispatch), never sent back to delayed and brought back.
    expect(log.filter((l) => l.startsWith('[jobs-api] waiting: tenant'))).toEqual([]);
  }, 60_000);

  it('a temporary override lowers a tenant\'s cap until it is reset; only admin may set it', async () => {
    const bad = await app.inject({ method: 'PUT', url: '/api/tenants/big/limits', headers: auth({ tenant: 'big' }), payload: { maxActive: 50 } });
    expect(bad.statusCode).toBe(403);
    const set = await app.inject({ method: 'PUT', url: '/api/tenants/big/limits', headers: ROOT, payload: { maxActive: 1, ttlSeconds: 120 } });
    expect(set.json().data).toMatchObject({ override: 1, effective: { scan: 1 } });
    expect(Date.parse(set.json().data.overrideExpiresAt)).toBeGreaterThan(Date.now() + 100_000);

    const big = auth({ tenant: 'big' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await app.inject({ method: 'POST', url: '/api/servers/flood/scan', headers: big, payload: { scan_type: 'full' } })).json().data.jobId);
    let maxBig = 0;
    const sampler = setInterval(() => void activeByTenant().then((a) => (maxBig = Math.max(maxBig, a.big ?? 0))), 100);
    await Promise.all(ids.map((id) => waitForJob(app, id, ['completed', 'failed'], 30_000)));
    clearInterval(sampler);
    expect(maxBig).toBe(1);

    const reset = await app.inject({ method: 'DELETE', url: '/api/tenants/big/limits', headers: ROOT });
    expect(reset.json().data).toMatchObject({ override: null, overrideExpiresAt: null, effective: { scan: 2 } });
  }, 60_000);
});
