import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/redis/keys.js';

// The names are data: a deployment upgraded in place must find its keys where the previous version left them.
describe('redisKeys', () => {
  const k = redisKeys('bull');

  it('names BullMQ queue key prefixes and the listing index', () => {
    expect(k.prefix).toBe('bull');
    expect(k.queue('scan')).toBe('bull:scan-queue:');
    expect(k.queue('backup')).toBe('bull:backup-queue:');
    expect(k.index.all).toBe('bull:jobsapi:idx:all');
    expect(k.index.tenantPrefix).toBe('bull:jobsapi:idx:tenant:');
    expect(k.index.tenant('acme')).toBe('bull:jobsapi:idx:tenant:acme');
    expect(k.index.tenants).toBe('bull:jobsapi:tenants');
  });

  it('names records, backups and dead-letter markers', () => {
    expect(k.record('scan', 'r1')).toBe('bull:jobsapi:record:scan:r1');
    expect(k.serverRecords('scan', 'web-1')).toBe('bull:jobsapi:server:web-1:scan');
    expect(k.backupOrder('web-1')).toBe('bull:jobsapi:backups:web-1:order');
    expect(k.backupEntries('web-1')).toBe('bull:jobsapi:backups:web-1:entries');
    expect(k.replayed('scan_x')).toBe('bull:jobsapi:replayed:scan_x');
  });

  it('names the coordination keys and channels', () => {
    expect(k.cancelChannel).toBe('bull:jobsapi:cancel');
    expect(k.cancelRequest('scan_x')).toBe('bull:jobsapi:cancel:scan_x');
    expect(k.jobLogChannel).toBe('bull:jobsapi:joblog');
    expect(k.serverLock('backup', 'web-1')).toBe('bull:jobsapi:lock:backup:web-1');
    expect(k.tenantSlots('scan', 'acme')).toBe('bull:jobsapi:slots:scan:acme');
    expect(k.tenantLimit('acme')).toBe('bull:jobsapi:tenant-limit:acme');
    expect(k.workerRegistry).toBe('bull:jobsapi:workers');
    expect(k.workerProcess('h:1:x')).toBe('bull:jobsapi:workers:h:1:x');
  });

  it('names the HTTP layer keys; an Idempotency-Key is stored hashed', () => {
    const hex = createHash('sha256').update('abc').digest('hex');
    expect(k.idempotency('acme', 'abc')).toBe(`bull:jobsapi:idem:acme:${hex}`);
    expect(k.rateLimitNamespace).toBe('bull:jobsapi:ratelimit:');
  });

  it('follows the prefix', () => {
    expect(redisKeys('p7').index.all).toBe('p7:jobsapi:idx:all');
    expect(redisKeys('p7').queue('update')).toBe('p7:update-queue:');
  });
});
