import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '../../src/jobs/index.js';
import { redisKeys } from '../../src/redis/keys.js';

/** The hash tag Redis Cluster places a key by: what is between the first `{` and the next `}`, when not empty. */
function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  const close = key.indexOf('}', open + 1);
  return open >= 0 && close > open + 1 ? key.slice(open + 1, close) : undefined;
}

// The names are data: a deployment upgraded in place must find its keys where the previous version left them,
// and on Redis Cluster the keys a script or transaction touches together must share one hash tag.
describe('redisKeys', () => {
  const k = redisKeys('bull');

  it('names BullMQ queue key prefixes and each queue\'s listing index under the queue\'s hash tag', () => {
    expect(k.prefix).toBe('bull');
    expect(k.queue('scan')).toBe('bull:{scan}:');
    expect(k.queue('backup')).toBe('bull:{backup}:');
    expect(k.index.all('scan')).toBe('bull:jobsapi:{scan}:idx:all');
    expect(k.index.tenantPrefix('scan')).toBe('bull:jobsapi:{scan}:idx:tenant:');
    expect(k.index.tenant('scan', 'acme')).toBe('bull:jobsapi:{scan}:idx:tenant:acme');
    expect(k.index.tenants('update')).toBe('bull:jobsapi:{update}:tenants');
  });

  it('puts every product key of a queue on the queue\'s tag, and the rest on {jobsapi}', () => {
    for (const q of QUEUE_NAMES) {
      const jobId = `${q}_AAAAAAAAAAAAAAAAAAAAAA`;
      const perQueue = [
        k.queue(q),
        k.index.all(q),
        k.index.tenant(q, 'acme'),
        k.index.tenants(q),
        k.record(q, 'r1'),
        k.serverRecords(q, 'web-1'),
        k.serverLock(q, 'web-1'),
        k.tenantSlots(q, 'acme'),
        k.tenantLimit(q, 'acme'),
        k.tenantThrottle(q, 'acme'),
        k.tenantStarts(q, 'acme'),
        k.queueConcurrency(q),
        k.cancelRequest(jobId),
        k.replayed(jobId),
        k.cancelRequest(`repeat:${q}~acme~nightly:1700000000000`),
      ];
      for (const key of perQueue) expect(hashTag(key), key).toBe(q);
    }
    for (const key of [k.backupOrder('web-1'), k.backupEntries('web-1')]) expect(hashTag(key)).toBe('backup');
    for (const key of [k.workerRegistry, k.workerProcess('h:1:x'), k.schema, k.migrationLock, k.globalSlots]) expect(hashTag(key)).toBe('jobsapi');
  });

  it('names records, backups and dead-letter markers', () => {
    expect(k.record('scan', 'r1')).toBe('bull:jobsapi:{scan}:record:r1');
    expect(k.serverRecords('scan', 'web-1')).toBe('bull:jobsapi:{scan}:server:web-1');
    expect(k.backupOrder('web-1')).toBe('bull:jobsapi:{backup}:backups:web-1:order');
    expect(k.backupEntries('web-1')).toBe('bull:jobsapi:{backup}:backups:web-1:entries');
    expect(k.replayed('scan_x')).toBe('bull:jobsapi:{jobsapi}:replayed:scan_x');
  });

  it('names the coordination keys and channels', () => {
    expect(k.cancelChannel).toBe('bull:jobsapi:cancel');
    expect(k.jobLogChannel).toBe('bull:jobsapi:joblog');
    expect(k.serverLock('backup', 'web-1')).toBe('bull:jobsapi:{backup}:lock:web-1');
    expect(k.tenantSlots('scan', 'acme')).toBe('bull:jobsapi:{scan}:slots:acme');
    expect(k.tenantLimit('update', 'acme')).toBe('bull:jobsapi:{update}:tenant-limit:acme');
    expect(k.workerRegistry).toBe('bull:jobsapi:{jobsapi}:workers');
    expect(k.workerProcess('h:1:x')).toBe('bull:jobsapi:{jobsapi}:workers:h:1:x');
  });

  it('leaves the HTTP layer keys untagged, so that Cluster spreads them; an Idempotency-Key is stored hashed', () => {
    const hex = createHash('sha256').update('abc').digest('hex');
    expect(k.idempotency('acme', 'abc')).toBe(`bull:jobsapi:idem:acme:${hex}`);
    expect(hashTag(k.idempotency('acme', 'abc'))).toBeUndefined();
    expect(k.rateLimitNamespace).toBe('bull:jobsapi:ratelimit:');
  });

  it('follows the prefix', () => {
    expect(redisKeys('p7').index.all('scan')).toBe('p7:jobsapi:{scan}:idx:all');
    expect(redisKeys('p7').queue('update')).toBe('p7:{update}:');
  });
});
