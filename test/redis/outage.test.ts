import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { buildApp } from '../../src/app.js';
import { redisOptionsFromUrl } from '../../src/redis/connection.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/redis/embedded.js';
import { auth, inventoryOf, testConfig, tmpDir } from '../helpers.js';

describe('when Redis is frozen or full', () => {
  const H = auth({ tenant: 'acme' });
  const servers = [{ id: 'db', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1] } }];

  it('frozen (SIGSTOP): every call answers 503 with Retry-After within the command timeout, /ready 503; back by itself on SIGCONT', async () => {
    const frozen = await startEmbeddedRedis(path.join(tmpDir('frozen'), 'redis'));
    const app = await buildApp(testConfig({ REDIS_URL: frozen.url, WORKERS: 'off', REDIS_COMMAND_TIMEOUT_MS: '1000' }), { inventory: inventoryOf(servers) });
    await app.ready();
    const submit = () => app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'scan:quick', data: { serverId: 'db' } } });
    try {
      const jobId = (await submit()).json().data.jobId as string;
      process.kill(frozen.pid, 'SIGSTOP');
      const answers = await Promise.all([submit(), app.inject({ url: `/api/jobs/${jobId}`, headers: H }), app.inject({ url: '/api/jobs', headers: H })]);
      for (const res of answers) {
        expect(res.statusCode, res.body).toBe(503);
        expect(res.headers['retry-after']).toBe('5');
      }
      expect((await app.inject({ url: '/ready' })).statusCode).toBe(503);
      process.kill(frozen.pid, 'SIGCONT');
      let after = await submit();
      for (let i = 0; i < 50 && after.statusCode !== 202; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await submit();
      }
      expect(after.statusCode).toBe(202);
      expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
    } finally {
      process.kill(frozen.pid, 'SIGCONT');
      await app.close();
      await frozen.stop();
    }
  });

  it('full (maxmemory reached): enqueues answer 503 REDIS_FULL with Retry-After, reads still work, /ready 503; back once memory frees', async () => {
    const full = await startEmbeddedRedis(path.join(tmpDir('full'), 'redis'));
    const client = new Redis(redisOptionsFromUrl(full.url));
    const app = await buildApp(testConfig({ REDIS_URL: full.url, WORKERS: 'off' }), { inventory: inventoryOf(servers) });
    await app.ready();
    const submit = () => app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'scan:quick', data: { serverId: 'db' } } });
    try {
      const jobId = (await submit()).json().data.jobId as string;
      const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
      await client.config('SET', 'maxmemory', String(used + 256 * 1024));
      // Fill what is left, as jobs and their results would.
      for (let i = 0; i < 1000; i++) {
        if (!(await client.set(`filler:${i}`, 'x'.repeat(4096)).then(() => true, () => false))) break;
      }
      // Full with a margin: right at the limit, a few kilobytes freed (a client's buffers) would let a write in.
      const filled = Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
      await client.config('SET', 'maxmemory', String(filled - 512 * 1024));
      const refused = await submit();
      expect(refused.statusCode, refused.body).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(refused.json()).toMatchObject({ success: false, error: { code: 'REDIS_FULL' } });
      expect((await app.inject({ url: `/api/jobs/${jobId}`, headers: H })).statusCode).toBe(200);
      const ready = await app.inject({ url: '/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().error.message).toContain('Redis is full');

      await client.config('SET', 'maxmemory', '0');
      expect((await submit()).statusCode).toBe(202);
      expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
    } finally {
      client.disconnect();
      await app.close();
      await full.stop();
    }
  });
});

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
