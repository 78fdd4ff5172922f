import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has the contract\'s defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, host: '127.0.0.1', redisUrl: undefined, workers: true, logLevel: 'info' });
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
    expect(() => loadConfig({ ADMIN_USER: 'ops', ADMIN_PASSWORD: 'long-enough-pass', VIEWER_USER: 'v', VIEWER_PASSWORD: 'short' })).toThrow(/VIEWER_PASSWORD: at least 12 characters/);
    expect(() => loadConfig({ TENANT_MAX_SHARE: '1.5' })).toThrow(/TENANT_MAX_SHARE: must be at most 1/);
  });

  it('lets one tenant use half of a queue unless TENANT_MAX_SHARE says otherwise', () => {
    expect(loadConfig({}).tenantMaxShare).toBe(0.5);
    expect(loadConfig({ TENANT_MAX_SHARE: '1' }).tenantMaxShare).toBe(1);
  });

  it('caps the jobs active over every queue with GLOBAL_MAX_ACTIVE (0, the default: no cap), naming it when wrong', () => {
    expect(loadConfig({}).globalMaxActive).toBe(0);
    expect(loadConfig({ GLOBAL_MAX_ACTIVE: '100' }).globalMaxActive).toBe(100);
    expect(() => loadConfig({ GLOBAL_MAX_ACTIVE: '-1' })).toThrow(/GLOBAL_MAX_ACTIVE: must be 0 \(no cap\) or more/);
    expect(() => loadConfig({ GLOBAL_MAX_ACTIVE: 'lots' })).toThrow(/GLOBAL_MAX_ACTIVE: must be a whole number of jobs/);
    expect(() => loadConfig({ GLOBAL_MAX_ACTIVE: '2.5' })).toThrow(/GLOBAL_MAX_ACTIVE: must be a whole number of jobs/);
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

  it('reads REDIS_SENTINELS as the master behind them, waiting for one replica per enqueue by default', () => {
    const c = loadConfig({ REDIS_SENTINELS: '10.0.0.5:26379, sentinel-b:26380,[::1]:26381', REDIS_PASSWORD: 'pw' });
    expect(c.redis).toEqual({
      sentinels: [
        { host: '10.0.0.5', port: 26379 },
        { host: 'sentinel-b', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
      password: 'pw',
      sentinelPassword: undefined,
    });
    expect(c.enqueueReplicas).toBe(1);
    expect(loadConfig({ REDIS_URL: 'redis://cache' })).toMatchObject({ redis: 'redis://cache', enqueueReplicas: 0 });
    expect(loadConfig({ REDIS_SENTINELS: 'a:1', ENQUEUE_REPLICAS: '0' }).enqueueReplicas).toBe(0);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:1,b' })).toThrow(/REDIS_SENTINELS: "b" is not host:port/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:70000' })).toThrow(/REDIS_SENTINELS: "a:70000" is not host:port/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_URL: 'redis://x' })).toThrow(/REDIS_URL and REDIS_SENTINELS: set one of them/);
  });

  it('reads REDIS_CLUSTER_NODES as a Cluster; refuses it with another target, a node that is not host:port, or ENQUEUE_REPLICAS', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.5:7000,redis-b:7001', REDIS_PASSWORD: 'pw' });
    expect(c.redis).toEqual({ cluster: [{ host: '10.0.0.5', port: 7000 }, { host: 'redis-b', port: 7001 }], password: 'pw' });
    expect(c.enqueueReplicas).toBe(0);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:7000,b' })).toThrow(/REDIS_CLUSTER_NODES: "b" is not host:port/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://x' })).toThrow(/REDIS_URL and REDIS_CLUSTER_NODES: set one of them/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_SENTINELS: 'b:26379' })).toThrow(/REDIS_SENTINELS and REDIS_CLUSTER_NODES: set one of them/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:7000', ENQUEUE_REPLICAS: '1' })).toThrow(/ENQUEUE_REPLICAS: not supported with REDIS_CLUSTER_NODES/);
  });
});

