import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/redis/keys.js';
import { FairDispatch } from '../../src/coordination/fair-dispatch.js';
import { TenantSlots } from '../../src/coordination/tenant-slots.js';
import { laneOrder } from '../../src/redis/lua/fair-dispatch.js';
import { ADMIN, auth, makeApp, redisEnv, tmpDir, waitForJob } from '../helpers.js';
import { startEntry, waitForOutput, type Run } from '../processes.js';
import type { JobView } from '../../src/store/job-store.js';

const ROOT = auth(ADMIN);
const BIG = auth({ tenant: 'big' });
const SMALL = auth({ tenant: 'small' });

/**
 * Fair dispatch (src/coordination/fair-dispatch.ts): which tenant's job starts
 * is decided when a slot frees, round robin over the tenants with jobs
 * waiting, within each tenant's cap; a job over its tenant's cap waits parked,
 * never sent to `delayed` and back.
 */
describe('fair dispatch between tenants', () => {
  let silent: net.Server;
  let port: number;
  const servers = () => [
    // Each full scan waits its timeout in the TLS handshake of a port that accepts and never answers: real work of a known length.
    { id: 'flood', tenant: 'big', host: '127.0.0.1', scan: { ports: [port], timeoutMs: 200 } },
    { id: 'small', tenant: 'small', host: '127.0.0.1', scan: { ports: [port], timeoutMs: 200 } },
  ];

  beforeAll(async () => {
    silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    port = (silent.address() as net.AddressInfo).port;
  });
  afterAll(() => silent.close());

  const bulk = async (app: FastifyInstance, headers: Record<string, string>, serverId: string, n: number) => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs/bulk', headers, payload: { jobs: Array.from({ length: n }, () => ({ type: 'scan:full', data: { serverId } })) } });
    expect(res.statusCode).toBe(202);
    return (res.json().data.jobs as Array<{ jobId: string }>).map((j) => j.jobId);
  };
  const views = async (app: FastifyInstance, ids: string[]) => (await Promise.all(ids.map((id) => app.jobs.store.get(id, undefined)))) as JobView[];
  /** Whether any of the jobs was ever sent back to wait (the job log says why each time). */
  const sentBack = async (app: FastifyInstance, ids: string[]) => {
    const logs = await Promise.all(ids.map((id) => app.redis.lrange(redisKeys(app.config.queuePrefix).bullmq('scan').jobLog(id), 0, -1)));
    return logs.flat().filter((line) => line.includes('waiting: tenant'));
  };
  /** The start order of every job, by the time a worker took it. */
  const startOrder = async (app: FastifyInstance, ids: string[]) =>
    (await views(app, ids)).sort((a, b) => Date.parse(a.processedAt!) - Date.parse(b.processedAt!)).map((j) => j.tenant);

  describe('one worker process', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      // A tenant may take the whole queue (scan: 5 at a time): what keeps a flood from starving others is the turn.
      app = await makeApp({ env: { TENANT_MAX_SHARE: '1' }, servers: servers() });
    });
    afterAll(() => app.close());
    afterEach(async () => {
      await app.inject({ method: 'POST', url: '/api/queues/scan/resume', headers: ROOT });
    });

    it("a small tenant's jobs start in turn with a flood's, not after it; the flood waits parked, never sent back", async () => {
      await app.inject({ method: 'POST', url: '/api/queues/scan/pause', headers: ROOT });
      const flood = await bulk(app, BIG, 'flood', 40);
      const small = await bulk(app, SMALL, 'small', 3);

      // Five flood jobs are ready (the queue's capacity); the rest wait their tenant's turn, the small tenant's too.
      const status = (await app.inject({ url: '/api/queues/scan', headers: ROOT })).json().data;
      expect(status.counts.waiting).toBe(43);
      expect(await app.redis.hlen(redisKeys(app.config.queuePrefix).fair('scan').parked)).toBe(38);
      const explained = (await app.inject({ url: `/api/jobs/${small[2]}/explain`, headers: SMALL })).json().data;
      expect(explained.state).toBe('waiting');
      expect(explained.reasons.find((r: { code: string }) => r.code === 'TENANT_TURN')).toMatchObject({ tenant: 'small', position: 3, ahead: 2, tenants: 2 });
      // Another tenant reading the small tenant's parked job: not found, as any other job of theirs.
      expect((await app.inject({ url: `/api/jobs/${small[0]}`, headers: BIG })).statusCode).toBe(404);
      expect((await app.inject({ url: `/api/jobs/${small[0]}`, headers: SMALL })).json().data.state).toBe('waiting');

      await app.inject({ method: 'POST', url: '/api/queues/scan/resume', headers: ROOT });
      for (const id of small) expect((await waitForJob(app, id, ['completed', 'failed'], 20_000)).state).toBe('completed');
      const floodLeft = (await views(app, flood)).filter((j) => j.state !== 'completed').length;
      expect(floodLeft).toBeGreaterThan(20);
      for (const id of flood) await waitForJob(app, id, ['completed', 'failed'], 30_000);

      // The five ready flood jobs first, then a slot each in turn: the small tenant's third job is about the 11th start
      // (jobs that start in the same millisecond may sort either way), not the 43rd.
      const order = await startOrder(app, [...flood, ...small]);
      expect(order.slice(0, 5)).toEqual(Array(5).fill('big'));
      expect(order.lastIndexOf('small')).toBeLessThanOrEqual(13);
      expect(await sentBack(app, [...flood, ...small])).toEqual([]);
      expect(await app.redis.hlen(redisKeys(app.config.queuePrefix).fair('scan').parked)).toBe(0);
    });

    it('an override of the cap holds at dispatch: never more of the tenant\'s jobs running, none sent back', async () => {
      expect((await app.inject({ method: 'PUT', url: '/api/tenants/big/limits', headers: ROOT, payload: { maxActive: 2, ttlSeconds: 60 } })).statusCode).toBe(200);
      try {
        const flood = await bulk(app, BIG, 'flood', 12);
        let most = 0;
        const sampler = setInterval(() => {
          // Running: past the turn (progress 20) and not done. A job a worker took before the API admitted it is active for a moment,
          // at 10, on its way back to wait; a job that is done (100) has given its slot to the next one and leaves the active list a moment later.
          void app.queues.scan.getActive().then((active) => (most = Math.max(most, active.filter((j) => j.data.tenant === 'big' && Number(j.progress) >= 20 && Number(j.progress) < 100).length)));
        }, 50);
        try {
          for (const id of flood) expect((await waitForJob(app, id, ['completed', 'failed'], 30_000)).state).toBe('completed');
        } finally {
          clearInterval(sampler);
        }
        expect(most).toBe(2);
        expect(await sentBack(app, flood)).toEqual([]);
      } finally {
        await app.inject({ method: 'DELETE', url: '/api/tenants/big/limits', headers: ROOT });
      }
    });

    it('a parked job can be cancelled or removed, and a drain takes the parked ones too', async () => {
      await app.inject({ method: 'POST', url: '/api/queues/scan/pause', headers: ROOT });
      const flood = await bulk(app, BIG, 'flood', 10);
      const parked = redisKeys(app.config.queuePrefix).fair('scan').parked;
      expect(await app.redis.hlen(parked)).toBe(5);
      const removed = await app.inject({ method: 'DELETE', url: `/api/jobs/${flood[9]}`, headers: BIG });
      expect(removed.statusCode).toBe(200);
      expect(await app.redis.hlen(parked)).toBe(4);
      expect((await app.inject({ url: `/api/jobs/${flood[9]}`, headers: BIG })).statusCode).toBe(404);
      const cancelled = await app.inject({ method: 'POST', url: `/api/jobs/${flood[8]}/cancel`, headers: BIG });
      expect(cancelled.statusCode).toBe(200);
      expect(await app.redis.hlen(parked)).toBe(3);

      // A clean of the waiting jobs older than an hour removes none: the parked ones are put back to wait their turn.
      const cleaned = await app.inject({ method: 'POST', url: '/api/queues/scan/clean', headers: ROOT, payload: { state: 'waiting', olderThanMs: 3_600_000 } });
      expect(cleaned.statusCode).toBe(200);
      expect(cleaned.json().data.removed).toBe(0);
      expect(await app.redis.hlen(parked)).toBe(3);

      const drained = (await app.inject({ method: 'POST', url: '/api/queues/scan/drain', headers: ROOT, payload: {} })).json().data;
      expect(drained.removed.waiting).toBe(8);
      expect(await app.redis.hlen(parked)).toBe(0);
      expect((await app.inject({ url: '/api/queues/scan', headers: ROOT })).json().data.counts.waiting).toBe(0);

      // The slots the drained ready jobs held are free again: new jobs start.
      await app.inject({ method: 'POST', url: '/api/queues/scan/resume', headers: ROOT });
      const [next] = await bulk(app, BIG, 'flood', 1);
      expect((await waitForJob(app, next!, ['completed', 'failed'], 20_000)).state).toBe('completed');
    });
  });

  describe('one job at a time', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      // Two scans at a time, one per tenant: the idle one looks whenever a job is added and finds none ready (the job
      // was parked), which makes BullMQ reset its priority counter.
      app = await makeApp({ env: { TENANT_MAX_ACTIVE: '1', QUEUE_CONCURRENCY: 'scan=2' }, servers: servers() });
    });
    afterAll(() => app.close());

    it("a tenant's parked jobs start in the order they came, whatever BullMQ's own counter did meanwhile", async () => {
      const one = async () => (await bulk(app, BIG, 'flood', 1))[0]!;
      const first = await one();
      await waitForJob(app, first, ['active'], 10_000);
      const second = await one();
      const third = await one();
      await waitForJob(app, second, ['active', 'completed'], 10_000);
      const fourth = await one();
      const jobs = [first, second, third, fourth];
      for (const id of jobs) await waitForJob(app, id, ['completed', 'failed'], 20_000);
      const started = (await views(app, jobs)).map((j) => [j.id, Date.parse(j.processedAt!)] as const).sort((a, b) => a[1] - b[1]);
      expect(started.map(([id]) => id)).toEqual(jobs);
    });
  });

  describe('the order of one bulk request', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      // No worker: the test plays one that took a job of a request before the API admitted the rest.
      app = await makeApp({ env: { WORKERS: 'off', TENANT_MAX_ACTIVE: '1' }, servers: servers() });
    });
    afterAll(() => app.close());
    /** A bulk request of four jobs of one creation time, in BullMQ as the API adds them, not admitted yet (ids marked by `mark`). */
    const request = async (tenant: string, serverId: string, mark: string, now: number) => {
      const ids = [0, 1, 2, 3].map((i) => `scan_${String(i).padStart(22, mark)}`);
      await app.queues.scan.addBulk(
        ids.map((jobId, place) => ({
          name: 'scan:full',
          data: { tenant, requestedBy: 't', recordId: `r${place}`, place, input: { serverId } },
          opts: { jobId, timestamp: now, priority: 3 },
        })),
      );
      return ids;
    };

    it('a job a worker took before its request was admitted goes back to its place in the request, not behind it', async () => {
      const keys = redisKeys(app.config.queuePrefix);
      const fair = new FairDispatch(app.redis, app.config.queuePrefix, 1, 1, () => 5);
      // Tenant big holds its one slot: a job of its own, admitted ready.
      const [holder] = await bulk(app, BIG, 'flood', 1);
      // A request of four jobs, one creation time: BullMQ has them, and a worker takes the first before admission.
      const now = Date.now();
      const ids = await request('big', 'flood', 'O', now);
      const prioritized = keys.bullmq('scan').prioritized;
      await app.redis.zrem(prioritized, ids[0]!);
      // The API admits the request: the three it finds ready wait parked (the tenant's slot is taken).
      expect(await fair.admit('scan', ids.map((id, place) => [id, 'big', laneOrder(now, place)] as const))).toBe(3);
      // The worker finds the tenant's jobs parked and puts its job back (BullMQ's moveToWait, played here).
      await fair.putBack('scan', { id: ids[0]!, tenant: 'big', priority: 3, order: laneOrder(now, 0) }, () => app.redis.zadd(prioritized, 3 * 2 ** 32, ids[0]!));
      expect(await app.redis.zrange(keys.fair('scan').lane('big'), 0, -1)).toEqual(ids);
      // The holder ends: the first of the request is the one dispatched.
      expect(await fair.release('scan', 'big', holder!)).toEqual([ids[0]]);
      expect(await app.redis.zscore(prioritized, ids[0]!)).not.toBeNull();
      expect(await app.redis.zrange(keys.fair('scan').lane('big'), 0, -1)).toEqual(ids.slice(1));
    });

    it('jobs workers took before admission take the slots reserved for later jobs of their request, earliest first', async () => {
      const keys = redisKeys(app.config.queuePrefix);
      const bull = keys.bullmq('scan');
      const active = `${keys.queue('scan')}active`;
      const fair = new FairDispatch(app.redis, app.config.queuePrefix, 1, 1, () => 5);
      const slots = new TenantSlots(app.redis, app.config.queuePrefix, 1, 1, { backup: 2, scan: 5, update: 1 });
      // A tenant with no job running sends a request of four, one creation time.
      const now = Date.now();
      const ids = await request('small', 'small', 'Q', now);
      await app.redis.zadd(keys.index.tenant('scan', 'small'), ...ids.flatMap((id) => [now, id]));
      // Two idle workers take the first two before the API admits the request (BullMQ's moveToActive, played here).
      for (const id of ids.slice(0, 2)) {
        await app.redis.zrem(bull.prioritized, id);
        await app.redis.lpush(active, id);
        await app.redis.set(bull.jobLock(id), 'worker-token', 'PX', 30_000);
      }
      // Admission reserves the tenant's one slot for the first it finds ready, the third; the fourth waits parked.
      expect(await fair.admit('scan', ids.map((id, place) => [id, 'small', laneOrder(now, place)] as const))).toBe(1);
      expect(await app.redis.zrange(keys.tenantSlots('scan', 'small'), 0, -1)).toEqual([ids[2]]);
      const placeOf = (i: number) => ({ priority: 3, order: laneOrder(now, i) });
      // The second asks first: the first, taken and not started, has the better claim.
      expect(await slots.acquire('scan', 'small', ids[1]!, placeOf(1))).toMatchObject({ cap: 1, active: 1 });
      // The first takes the third's reservation; the third waits parked in its place, counted as waiting again.
      const got = await slots.acquire('scan', 'small', ids[0]!, placeOf(0));
      expect('held' in got).toBe(true);
      expect(await app.redis.zrange(keys.tenantSlots('scan', 'small'), 0, -1)).toEqual([ids[0]]);
      expect(await app.redis.zscore(bull.prioritized, ids[2]!)).toBeNull();
      expect(await app.redis.zrange(keys.fair('scan').lane('small'), 0, -1)).toEqual(ids.slice(2));
      expect(await app.redis.zscore(keys.index.queued('scan', 'small'), ids[2]!)).not.toBeNull();
      // The second, at the cap with nothing reserved to take, goes back to its place: before the third.
      expect(await slots.acquire('scan', 'small', ids[1]!, placeOf(1))).toMatchObject({ cap: 1, active: 1 });
      await fair.putBack('scan', { id: ids[1]!, tenant: 'small', ...placeOf(1) }, async () => {
        await app.redis.del(bull.jobLock(ids[1]!));
        await app.redis.lrem(active, 0, ids[1]!);
        await app.redis.zadd(bull.prioritized, 3 * 2 ** 32, ids[1]!);
      });
      expect(await app.redis.zrange(keys.fair('scan').lane('small'), 0, -1)).toEqual(ids.slice(1));
      // The first ends: the second is dispatched next, then the third, then the fourth.
      if ('held' in got) got.held.release();
      for (let i = 0; i < 100 && (await app.redis.zscore(bull.prioritized, ids[1]!)) === null; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await app.redis.zrange(keys.fair('scan').lane('small'), 0, -1)).toEqual(ids.slice(2));
      slots.fair.stop();
    });
  });

  describe('a slot handed on when a job ends', () => {
    let app: FastifyInstance;
    beforeAll(async () => {
      // No worker: the test plays one, with the product's own slots, on a connection of its own.
      app = await makeApp({ env: { WORKERS: 'off', TENANT_MAX_ACTIVE: '1' }, servers: servers() });
    });
    afterAll(() => app.close());

    it('the next job is dispatched, leaves its tenant\'s waiting count, and starts in this process without asking Redis again; the cap holds', async () => {
      const keys = redisKeys(app.config.queuePrefix);
      const connection = app.redis.duplicate();
      // A producer connection does not queue commands while it connects (a Cluster's takes a moment).
      if (connection.status !== 'ready') await new Promise((r) => connection.once('ready', r));
      let sent = 0;
      const send = connection.sendCommand.bind(connection);
      connection.sendCommand = ((...args: Parameters<typeof send>) => ((sent += 1), send(...args)));
      try {
        const slots = new TenantSlots(connection, app.config.queuePrefix, 1, 1, { backup: 2, scan: 5, update: 1 });
        const [first, second, third] = await bulk(app, BIG, 'flood', 3);
        const queued = keys.index.queued('scan', 'big');
        expect(await app.redis.zrange(queued, 0, -1)).toEqual(expect.arrayContaining([first, second, third]));
        // The first was admitted ready: its start turns the reservation into the running job's.
        const got = await slots.acquire('scan', 'big', first!);
        expect('held' in got).toBe(true);
        // It ends: its slot goes to the next of its tenant's jobs, which no longer counts as waiting to start.
        if ('held' in got) got.held.release();
        for (let i = 0; i < 100 && (await app.redis.zscore(keys.bullmq('scan').prioritized, second!)) === null; i++) await new Promise((r) => setTimeout(r, 20));
        expect(await app.redis.zscore(queued, second!)).toBeNull();
        expect(await app.redis.zscore(queued, third!)).not.toBeNull();
        await new Promise((r) => setTimeout(r, 50));
        // This process dispatched it a moment ago: it starts with what the release answered, no call.
        const before = sent;
        const next = await slots.acquire('scan', 'big', second!);
        expect('held' in next).toBe(true);
        expect(sent - before).toBe(0);
        // The slot is the second's now: the third waits (TENANT_MAX_ACTIVE=1).
        expect(await slots.acquire('scan', 'big', third!)).toMatchObject({ cap: 1, active: 1 });
        if ('held' in next) next.held.release();
        slots.fair.stop();
      } finally {
        connection.disconnect();
      }
    });
  });

  describe('two worker processes', () => {
    let app: FastifyInstance;
    const runs: Run[] = [];
    beforeAll(async () => {
      const prefix = `fair${randomBytes(4).toString('hex')}`;
      const dir = tmpDir('fair-two');
      const file = path.join(dir, 'servers.json');
      writeFileSync(file, JSON.stringify({ servers: servers() }));
      app = await makeApp({ env: { WORKERS: 'off', QUEUE_PREFIX: prefix, TENANT_MAX_SHARE: '1' }, servers: servers() });
      const env = { ...redisEnv(), QUEUE_PREFIX: prefix, DATA_DIR: dir, SERVERS_FILE: file, TENANT_MAX_SHARE: '1' };
      for (let i = 0; i < 2; i++) runs.push(startEntry('workers/main.ts', env));
      for (const run of runs) await waitForOutput(run, /worker process started/);
      // Both reported: the API counts ten scan slots.
      for (let i = 0; i < 100; i++) {
        if ((await app.inject({ url: '/api/workers', headers: ROOT })).json().data.queues.scan.online === 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    afterAll(async () => {
      for (const run of runs) run.child.kill('SIGTERM');
      await Promise.all(runs.map((r) => r.exited));
      await app.close();
    });

    it("two processes share the turns: the small tenant's jobs start among the first after the ready ones", async () => {
      await app.inject({ method: 'POST', url: '/api/queues/scan/pause', headers: ROOT });
      const flood = await bulk(app, BIG, 'flood', 60);
      const small = await bulk(app, SMALL, 'small', 5);
      expect(await app.redis.hlen(redisKeys(app.config.queuePrefix).fair('scan').parked)).toBe(55);
      await app.inject({ method: 'POST', url: '/api/queues/scan/resume', headers: ROOT });
      for (const id of [...small, ...flood]) expect((await waitForJob(app, id, ['completed', 'failed'], 30_000)).state).toBe('completed');
      const order = await startOrder(app, [...flood, ...small]);
      // Ten ready flood jobs (two processes x 5), then turns: the fifth small job is about the 20th start (jobs that
      // start in the same millisecond may sort either way), not the 65th.
      expect(order.slice(0, 10)).toEqual(Array(10).fill('big'));
      expect(order.lastIndexOf('small')).toBeLessThanOrEqual(23);
      expect(await sentBack(app, [...flood, ...small])).toEqual([]);
      // Both processes ran jobs, and never more than the capacity at once (the workers' slots).
      const stats = (await app.inject({ url: '/api/workers', headers: ROOT })).json().data;
      expect(stats.processes.length).toBe(2);
      for (const p of stats.processes) expect(p.queues.scan.completed).toBeGreaterThan(5);
    });
  });
});
