import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { redisOptionsFromUrl } from '../../src/redis/connection.js';
import { startEmbeddedRedis } from '../../src/redis/embedded.js';
import { inventoryOf, testConfig, tmpDir } from '../helpers.js';

describe('REDIS_URL', () => {
  it('reads redis://, rediss:// and socket paths', () => {
    expect(redisOptionsFromUrl('redis://:pw@cache:6380/2')).toMatchObject({ host: 'cache', port: 6380, password: 'pw', db: 2 });
    expect(redisOptionsFromUrl('rediss://cache')).toMatchObject({ host: 'cache', port: 6379, tls: {} });
    expect(redisOptionsFromUrl('/run/redis.sock')).toEqual({ path: '/run/redis.sock' });
    expect(() => redisOptionsFromUrl('http://cache')).toThrow(/REDIS_URL/);
  });
});

describe('Redis policy', () => {
  it('refuses to start on a Redis that may evict keys', async () => {
    const redis = await startEmbeddedRedis(path.join(tmpDir('evict'), 'redis'));
    const client = new Redis(redisOptionsFromUrl(redis.url));
    try {
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await expect(buildApp(testConfig({ REDIS_URL: redis.url, WORKERS: 'off' }), { inventory: inventoryOf([]) })).rejects.toThrow(/noeviction/);
    } finally {
      client.disconnect();
      await redis.stop();
    }
  });
});
