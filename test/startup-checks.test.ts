import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { capacityShare } from '../src/coordination/tenant-slots.js';
import { startEmbeddedRedis } from '../src/redis/embedded.js';
import { loadInventory, parseInventory } from '../src/inventory.js';
import { generateOpenApi, OPENAPI_FILE } from '../src/cli/openapi.js';
import { redisOptionsFromUrl } from '../src/redis/connection.js';
import { readFileSync } from 'node:fs';
import { inventoryOf, testConfig, tmpDir } from './helpers.js';

describe('the server inventory', () => {
  it('loads the shipped config/servers.json, resolving relative paths from its folder', () => {
    const inv = loadInventory(path.resolve('config/servers.json'));
    const local = inv.get('localhost', 'default')!;
    expect(local.backup?.paths).toEqual(['sample/www']);
    expect(inv.resolvePath('sample/www')).toBe(path.resolve('config/sample/www'));
    expect(inv.resolveCommand(local.update!.command)[0]).toBe(path.resolve('config/scripts/update-localhost.sh'));
    expect(inv.resolveCommand(['apt-get', '-y'])).toEqual(['apt-get', '-y']);
  });

  const cases: Array<[string, unknown, string]> = [
    ['a bad id', { servers: [{ id: 'Web_1', host: 'a' }] }, 'servers[0] (id "Web_1").id'],
    ['a missing host', { servers: [{ id: 'a' }] }, 'servers[0] (id "a").host'],
    ['a command given as a string', { servers: [{ id: 'a', host: 'h', update: { command: 'apt-get upgrade' } }] }, 'servers[0] (id "a").update.command'],
    ['an unknown field', { servers: [{ id: 'a', host: 'h', backups: {} }] }, 'servers[0] (id "a")'],
    ['a duplicate id', { servers: [{ id: 'a', host: 'h' }, { id: 'a', host: 'i' }] }, 'servers[1] (id "a").id: duplicate id'],
    ['no servers array', { hosts: [] }, 'servers'],
  ];
  for (const [what, raw, where] of cases) {
    it(`names the entry and field of ${what}`, () => {
      expect(() => parseInventory(raw, '/', 'servers.json')).toThrow(where);
    });
  }

  it('defaults the tenant and hides servers from other tenants', () => {
    const inv = inventoryOf([{ id: 'a', host: 'h' }, { id: 'b', host: 'h', tenant: 'acme' }]);
    expect(inv.get('a', 'default')?.tenant).toBe('default');
    expect(inv.get('b', 'default')).toBeUndefined();
    expect(inv.get('b', undefined)?.id).toBe('b');
    expect(inv.list('acme').map((s) => s.id)).toEqual(['b']);
  });
});

describe('configuration', () => {
  it('has the contract\'s defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, host: '0.0.0.0', redisUrl: undefined, workers: true, logLevel: 'info' });
    expect(c.dataDir).toBe(path.resolve('data'));
    expect(c.backupDir).toBe(path.resolve('data/backups'));
    expect(c.serversFile).toBe(path.resolve('config/servers.json'));
  });

  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ PORT: 'http' })).toThrow(/PORT/);
    expect(() => loadConfig({ WORKERS: 'maybe' })).toThrow(/WORKERS/);
    expect(() => loadConfig({ BACKUP_RETENTION: '0' })).toThrow(/BACKUP_RETENTION/);
    expect(() => loadConfig({ TENANT_MAX_SHARE: '0' })).toThrow(/TENANT_MAX_SHARE: must be more than 0/);
    expect(() => loadConfig({ ADMIN_USER: 'ops' })).toThrow(/ADMIN_USER\/ADMIN_PASSWORD .* set both of a pair/);
    expect(() => loadConfig({ ADMIN_USER: 'ops', ADMIN_PASSWORD: 'short' })).toThrow(/ADMIN_PASSWORD: at least 12 characters/);
    expect(() => loadConfig({ TENANT_MAX_SHARE: '1.5' })).toThrow(/TENANT_MAX_SHARE: must be at most 1/);
  });

  it('a tenant\'s share of a queue: half by default, at least one job, the whole queue with TENANT_MAX_SHARE=1', () => {
    expect(loadConfig({}).tenantMaxShare).toBe(0.5);
    expect(capacityShare('scan', 1, 0.5)).toBe(2);
    expect(capacityShare('update', 1, 0.5)).toBe(1);
    expect(capacityShare('backup', 4, 0.5)).toBe(4);
    expect(capacityShare('scan', 0, 1)).toBe(5);
  });

  it('reads BACKUP_ENCRYPTION_KEY as 32 bytes of hex or base64, and refuses anything else', () => {
    const key = Buffer.alloc(32, 7);
    expect(loadConfig({}).backupKey).toBeUndefined();
    expect(loadConfig({ BACKUP_ENCRYPTION_KEY: '' }).backupKey).toBeUndefined();
    expect(loadConfig({ BACKUP_ENCRYPTION_KEY: key.toString('hex') }).backupKey).toEqual(key);
    expect(loadConfig({ BACKUP_ENCRYPTION_KEY: key.toString('base64') }).backupKey).toEqual(key);
    expect(loadConfig({}).backupRetention).toBe(10);
    for (const bad of ['secret', key.subarray(0, 16).toString('hex'), key.toString('hex') + '00', Buffer.alloc(24).toString('base64')]) {
      expect(() => loadConfig({ BACKUP_ENCRYPTION_KEY: bad })).toThrow(/BACKUP_ENCRYPTION_KEY: must be 32 bytes/);
    }
  });

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

describe('openapi/openapi.json', () => {
  it('matches what the routes generate (run `npm run openapi:generate` after changing a route)', async () => {
    const committed = readFileSync(OPENAPI_FILE, 'utf8');
    const generated = await generateOpenApi();
    expect(generated === committed, 'openapi/openapi.json is out of date').toBe(true);
    const doc = JSON.parse(generated);
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/api/jobs', '/api/jobs/{id}', '/api/jobs/{id}/retry', '/api/jobs/stats/all', '/api/metrics/queues', '/api/metrics/system', '/api/servers', '/api/servers/{id}', '/api/servers/{id}/backup', '/api/servers/{id}/scan', '/api/servers/{id}/update', '/health', '/ready']) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });
});
