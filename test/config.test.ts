import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

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

  it('lets one tenant use half of a queue unless TENANT_MAX_SHARE says otherwise', () => {
    expect(loadConfig({}).tenantMaxShare).toBe(0.5);
    expect(loadConfig({ TENANT_MAX_SHARE: '1' }).tenantMaxShare).toBe(1);
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
});
