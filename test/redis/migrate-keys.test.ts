import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { migrateKeys } from '../../src/redis/migrate-keys.js';
import { redisKeys } from '../../src/redis/keys.js';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

const jobId = (queue: string) => `${queue}_${randomBytes(16).toString('base64url')}`;

/** All keys under a prefix, sorted. */
async function keysOf(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

// A deployment of the earlier layout (queues named `scan-queue`, product keys without hash tags)
// upgrades in place: its jobs, listings, backups and tenant limits are where the new version looks.
describe('the one-time key migration of an upgrade', () => {
  const redis = new Redis(inject('redisUrl'));
  const prefix = `m${randomBytes(5).toString('hex')}`;
  const servers = [{ id: 'web-1', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }];
  const acme = auth({ tenant: 'acme' });
  const waiting = jobId('scan');
  const failed = jobId('update');
  const backupEntry = JSON.stringify({ backupId: 'b-1', serverId: 'web-1', completedAt: '2026-11-30T00:00:00.000Z' });
  let app: FastifyInstance | undefined;

  beforeAll(async () => {
    // What the earlier version left: BullMQ queues under their old names, jobs in them...
    const now = Date.now();
    const envelope = (serverId: string) => ({ tenant: 'acme', requestedBy: 'ops', recordId: randomBytes(8).toString('hex'), input: { serverId } });
    const scanQueue = new Queue('scan-queue', { connection: redis, prefix });
    await scanQueue.add('scan:quick', envelope('web-1'), { jobId: waiting, timestamp: now - 2000, attempts: 1 });
    const updateQueue = new Queue('update-queue', { connection: redis, prefix });
    await updateQueue.add('update:run', envelope('web-1'), { jobId: failed, timestamp: now - 1000, attempts: 1 });
    const worker = new Worker('update-queue', () => Promise.reject(new Error('mirror unreachable')), { connection: redis.duplicate({ maxRetriesPerRequest: null }), prefix });
    await new Promise<void>((resolve) => worker.on('failed', () => resolve()));
    await worker.close();
    await Promise.all([scanQueue.close(), updateQueue.close()]);
    // ...and the product's keys of that layout.
    const ns = `${prefix}:jobsapi`;
    await redis
      .multi()
      .zadd(`${ns}:idx:all`, now - 2000, waiting, now - 1000, failed)
      .zadd(`${ns}:idx:tenant:acme`, now - 2000, waiting, now - 1000, failed)
      .sadd(`${ns}:tenants`, 'acme')
      .zadd(`${ns}:backups:web-1:order`, now, 'b-1')
      .hset(`${ns}:backups:web-1:entries`, 'b-1', backupEntry)
      .set(`${ns}:tenant-limit:acme`, '3', 'EX', 3600)
      .hset(`${ns}:record:scan:r-1`, 'state', 'completed')
      .zadd(`${ns}:server:web-1:scan`, now, 'r-1')
      .zadd(`${ns}:workers`, now, 'old-host:1')
      .set(`${ns}:idem:acme:abc`, '{"fp":"x","state":"pending"}', 'EX', 60)
      .exec();
  });
  afterAll(async () => {
    await app?.close();
    redis.disconnect();
  });

  it('moves every key at the first start, and the jobs read, list and run as before', async () => {
    app = await makeApp({ env: { QUEUE_PREFIX: prefix }, servers });
    const left = await keysOf(redis, prefix);
    expect(left.filter((k) => k.includes('-queue:'))).toEqual([]);
    expect(left.filter((k) => k.startsWith(`${prefix}:jobsapi:`) && !k.includes('{') && !k.includes(':idem:'))).toEqual([]);

    // The failed job reads as before; the waiting one is run by this version's workers.
    const before = await app.inject({ url: `/api/jobs/${failed}`, headers: acme });
    expect(before.statusCode).toBe(200);
    expect(before.json().data).toMatchObject({ state: 'failed', failedReason: 'mirror unreachable', queue: 'update' });
    expect((await waitForJob(app, waiting)).state).toBe('completed');

    // The tenant's listing spans both queues, newest first, page by page.
    const first = await app.inject({ url: '/api/jobs?limit=1', headers: acme });
    const second = await app.inject({ url: `/api/jobs?limit=1&cursor=${first.json().data.nextCursor}`, headers: acme });
    expect([first.json().data.jobs[0].id, second.json().data.jobs[0].id]).toEqual([failed, waiting]);
    expect(second.json().data.nextCursor).toBeNull();

    const keys = redisKeys(prefix);
    expect(await redis.hget(keys.backupEntries('web-1'), 'b-1')).toBe(backupEntry);
    expect(await redis.zrange(keys.serverRecords('scan', 'web-1'), 0, -1)).toContain('r-1');
    expect((await app.tenants.limit('acme')).override).toBe(3);
    const limit = await app.inject({ url: '/api/tenants/acme/limits', headers: auth(ADMIN) });
    expect(limit.json().data).toMatchObject({ override: 3 });
    // The Idempotency-Key responses keep their names (they carry no hash tag in either layout).
    expect(await redis.exists(`${prefix}:jobsapi:idem:acme:abc`)).toBe(1);
  });

  it('is done once: a second start moves nothing and finds the same jobs', async () => {
    await app!.close();
    const keysBefore = await keysOf(redis, prefix);
    expect(await migrateKeys(redis, prefix)).toBeUndefined();
    app = await makeApp({ env: { QUEUE_PREFIX: prefix }, servers });
    const listed = await app.inject({ url: '/api/jobs?limit=10', headers: acme });
    expect(listed.json().data.jobs.map((j: { id: string }) => j.id)).toEqual([failed, waiting]);
    expect((await keysOf(redis, prefix)).filter((k) => !keysBefore.includes(k) && !k.includes('jobsapi:{jobsapi}:workers'))).toEqual([]);
  });

  it('a process of the earlier version still running (a rolling upgrade): what it writes afterwards is moved too', async () => {
    const late = jobId('scan');
    const oldQueue = new Queue('scan-queue', { connection: redis, prefix });
    await oldQueue.add('scan:quick', { tenant: 'acme', requestedBy: 'ops', recordId: 'late', input: { serverId: 'web-1' } }, { jobId: late, attempts: 1 });
    await oldQueue.close();
    await redis.zadd(`${prefix}:jobsapi:idx:tenant:acme`, Date.now(), late);
    await redis.zadd(`${prefix}:jobsapi:idx:all`, Date.now(), late);
    // What the API runs every minute, and every process at start.
    expect(await migrateKeys(redis, prefix)).toMatchObject({ indexEntries: 2 });
    const lateJob = await waitForJob(app!, late);
    expect(lateJob, JSON.stringify(lateJob)).toMatchObject({ state: 'completed' });
    const listed = await app!.inject({ url: '/api/jobs?limit=10', headers: acme });
    expect(listed.json().data.jobs.map((j: { id: string }) => j.id)).toContain(late);
    expect(await migrateKeys(redis, prefix)).toBeUndefined();
  });

  it('a migration cut short is finished by the next start, merging what both names hold', async () => {
    const p = `c${randomBytes(5).toString('hex')}`;
    const keys = redisKeys(p);
    const a = jobId('scan');
    const b = jobId('scan');
    // The crash left one completed set under each name, and the old index half split.
    await redis.zadd(`${p}:scan-queue:completed`, 1, a);
    await redis.zadd(keys.queue('scan') + 'completed', 2, b);
    await redis.zadd(`${p}:jobsapi:idx:all`, 1, a);
    await redis.zadd(keys.index.all('scan'), 2, b);
    expect(await migrateKeys(redis, p)).toMatchObject({ merged: 1, indexEntries: 1 });
    expect(await redis.zrange(keys.queue('scan') + 'completed', 0, -1)).toEqual([a, b]);
    expect(await redis.zrange(keys.index.all('scan'), 0, -1)).toEqual([a, b]);
    expect(await redis.exists(`${p}:scan-queue:completed`, `${p}:jobsapi:idx:all`)).toBe(0);
    expect(await migrateKeys(redis, p)).toBeUndefined();
  });
});
