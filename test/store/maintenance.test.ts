import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/redis/keys.js';
import { IndexSweeper } from '../../src/store/index-sweeper.js';
import { INDEX_GRACE_MS } from '../../src/store/job-store.js';
import { RecordStore, RECORDS_PER_SERVER } from '../../src/store/records.js';
import { auth, makeApp } from '../helpers.js';

// What keeps Redis flat while jobs pass through: the job index forgets jobs
// BullMQ dropped, and a server keeps a bounded history of records.
describe('Redis stays flat', () => {
  let app: FastifyInstance;
  const acme = auth({ tenant: 'acme' });
  beforeAll(async () => {
    app = await makeApp({ env: { WORKERS: 'off' }, servers: [{ id: 'web-1', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1] } }] });
  });
  afterAll(() => app.close());

  const enqueue = async (n: number) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/jobs/bulk',
      headers: acme,
      payload: { jobs: Array.from({ length: n }, () => ({ type: 'scan:quick', data: { serverId: 'web-1' } })) },
    });
    return (res.json().data.jobs as Array<{ jobId: string }>).map((j) => j.jobId);
  };
  const store = () => app.jobs.store;
  const indexed = async (tenant: string | undefined) => app.redis.zrange(store().indexKey('scan', tenant), 0, -1);

  it('the index sweep drops entries of jobs BullMQ no longer has, from every index, once past the grace period', async () => {
    const ids = await enqueue(5);
    // BullMQ retention (or any removal behind the API's back) drops two jobs.
    await app.queues.scan.remove(ids[0]!);
    await app.queues.scan.remove(ids[1]!);
    // Young entries are left alone: their job may be in the middle of being added.
    const young = await store().sweepStep('scan', '0', 1000);
    expect(young.removed).toBe(0);
    let cursor = '0';
    let removed = 0;
    do {
      const step = await store().sweepStep('scan', cursor, 2, Date.now() + INDEX_GRACE_MS + 1000);
      cursor = step.cursor;
      removed += step.removed;
    } while (cursor !== '0');
    expect(removed).toBe(2);
    for (const tenant of [undefined, 'acme']) {
      const left = await indexed(tenant);
      expect(left).not.toContain(ids[0]);
      expect(left).not.toContain(ids[1]);
      expect(left).toEqual(expect.arrayContaining(ids.slice(2)));
    }
    // The jobs still there read and list as before.
    const listed = (await app.inject({ url: '/api/jobs?limit=100', headers: acme })).json().data.jobs.map((j: { id: string }) => j.id);
    expect(listed).toEqual(expect.arrayContaining(ids.slice(2)));
  });

  it('runs by itself: a sweeper walks the index in steps and rests between walks', async () => {
    const ids = await enqueue(3);
    await app.queues.scan.remove(ids[0]!);
    // Age the entries past the grace period, as time would.
    const old = Date.now() - INDEX_GRACE_MS - 1000;
    for (const tenant of [undefined, 'acme']) for (const id of ids) await app.redis.zadd(store().indexKey('scan', tenant), old, id);
    const sweeper = new IndexSweeper(store(), { batch: 2, stepMs: 1, restMs: 20 });
    sweeper.start();
    const deadline = Date.now() + 5000;
    while (sweeper.totals.walks < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await sweeper.stop();
    expect(sweeper.totals.walks).toBeGreaterThanOrEqual(2);
    expect(sweeper.totals.removed).toBeGreaterThanOrEqual(1);
    expect(await indexed('acme')).not.toContain(ids[0]);
    expect(await indexed('acme')).toEqual(expect.arrayContaining(ids.slice(1)));
  });

  it(`a server keeps its newest ${RECORDS_PER_SERVER} scan records; older ones are deleted`, async () => {
    const records = new RecordStore(app.redis, app.config.queuePrefix);
    for (let i = 0; i < RECORDS_PER_SERVER + 5; i += 1) {
      await records.start('scan', `rec-${i}`, { serverId: 'busy', jobId: `scan_${i}`, tenant: 'acme' });
    }
    const keys = redisKeys(app.config.queuePrefix);
    const kept = await app.redis.zrange(keys.serverRecords('scan', 'busy'), 0, -1);
    expect(kept).toHaveLength(RECORDS_PER_SERVER);
    expect(kept).toContain(`rec-${RECORDS_PER_SERVER + 4}`);
    const all = Array.from({ length: RECORDS_PER_SERVER + 5 }, (_, i) => `rec-${i}`);
    const dropped = all.filter((id) => !kept.includes(id));
    expect(dropped).toHaveLength(5);
    for (const id of dropped) expect(await app.redis.exists(keys.record('scan', id))).toBe(0);
    expect(await app.redis.exists(keys.record('scan', kept[0]!))).toBe(1);
  });
});
