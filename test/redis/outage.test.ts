import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { auth, inventoryOf, testConfig, tmpDir } from '../helpers.js';

describe('when Redis goes away', () => {
  const dir = tmpDir('outage');
  let redis: EmbeddedRedis | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  it('answers 503 with Retry-After at once, then recovers by itself when Redis is back', async () => {
    redis = await startEmbeddedRedis(path.join(dir, 'redis'));
    const config = testConfig({ REDIS_URL: redis.url, WORKERS: 'off' });
    const app = await buildApp(config, { inventory: inventoryOf([{ id: 'db', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1] } }]) });
    await app.ready();
    const H = auth({ tenant: 'acme' });
    const submit = () => app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'scan:quick', data: { serverId: 'db' } } });
    try {
      const before = await submit();
      expect(before.statusCode).toBe(202);
      const jobId = before.json().data.jobId;

      await redis.stop();
      // Wait until the client has noticed.
      for (let i = 0; i < 100 && app.redis.status === 'ready'; i++) await new Promise((r) => setTimeout(r, 20));

      const started = Date.now();
      for (const res of [await submit(), await app.inject({ url: `/api/jobs/${jobId}`, headers: H }), await app.inject({ url: '/api/jobs', headers: H })]) {
        expect(res.statusCode).toBe(503);
        expect(res.headers['retry-after']).toBe('5');
        expect(res.json()).toMatchObject({ success: false, error: { code: 'REDIS_UNAVAILABLE' } });
      }
      expect(Date.now() - started).toBeLessThan(2000);
      expect((await app.inject({ url: '/ready' })).statusCode).toBe(503);
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);

      // Same data dir and socket: the append-only file brings the job back.
      redis = await startEmbeddedRedis(path.join(dir, 'redis'));
      let after = await submit();
      for (let i = 0; i < 100 && after.statusCode !== 202; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await submit();
      }
      expect(after.statusCode).toBe(202);
      const job = await app.inject({ url: `/api/jobs/${jobId}`, headers: H });
      expect(job.statusCode).toBe(200);
      expect(job.json().data.state).toBe('waiting');
      expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
