import { Job, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/redis/connection.js';
import { redisKeys } from '../../src/redis/keys.js';
import { QUEUES } from '../../src/jobs/index.js';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

const OPS = auth({ tenant: 'ops' });
const OTHER = auth({ tenant: 'globex' });
const ROOT = auth(ADMIN);
const node = process.execPath;
const HANG = [node, '-e', 'setInterval(() => {}, 1000)'];
const DAY_MS = 24 * 3600 * 1000;

type Finished = { completed: number; failed: number; cancelled: number };

function helpers(app: () => FastifyInstance) {
  const call = (method: 'GET' | 'POST', url: string, headers = ROOT, payload?: object) => app().inject({ method, url, headers, ...(payload ? { payload } : {}) });
  const enqueue = async (type: string, serverId: string, options: object = {}, headers = OPS) => {
    const res = await call('POST', '/api/jobs', headers, { type, data: { serverId }, options });
    expect(res.statusCode, res.body).toBe(202);
    return res.json().data.jobId as string;
  };
  return { call, enqueue };
}

/** Whether a process group still exists. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Workers in the app; BullMQ keeps a single completed job per queue, so counting finished jobs there would be wrong.
describe('throughput, slow jobs and remove-stuck, with workers running', () => {
  let app: FastifyInstance;
  const { call, enqueue } = helpers(() => app);

  beforeAll(async () => {
    app = await makeApp({
      env: { COMPLETED_RETENTION_COUNT: '1' },
      servers: [
        { id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'gone', tenant: 'ops', host: 'no-such-host.invalid', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'disk', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: disk full'); process.exit(2)"] } },
        { id: 'hang', tenant: 'ops', host: '127.0.0.1', update: { command: HANG, timeoutSec: 600 } },
        { id: 'quick', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'process.exit(0)'] } },
        { id: 'slow', tenant: 'globex', host: '127.0.0.1', update: { command: [node, '-e', 'setTimeout(() => process.exit(0), 1500)'] } },
        { id: 'slow-fail', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'setTimeout(() => process.exit(4), 800)'] } },
      ],
    });
  });
  afterAll(() => app.close());

  /** A finished job may be gone already: BullMQ keeps one completed job per queue here. */
  const finished = (id: string) =>
    until(`job ${id} to finish`, () => app.jobs.store.get(id, undefined), (v) => v === undefined || ['completed', 'failed', 'cancelled'].includes(v.state), 20_000);

  const throughput = async (queue: string, windowMin = 60) => {
    const res = await call('GET', `/api/queues/${queue}/throughput?windowMin=${windowMin}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as { queue: string; windowMin: number; from: string; to: string; total: Finished; perMinute: Finished; buckets: Array<{ minute: string } & Finished> };
  };

  it('the new routes need admin and check their bounds', async () => {
    for (const [method, url] of [['GET', '/api/queues/scan/throughput'], ['GET', '/api/queues/scan/slow-jobs'], ['POST', '/api/queues/scan/remove-stuck']] as const) {
      expect((await call(method, url, OPS)).statusCode).toBe(403);
    }
    for (const url of ['/api/queues/scan/throughput?windowMin=0', '/api/queues/scan/throughput?windowMin=1441', '/api/queues/scan/slow-jobs?limit=0', '/api/queues/scan/slow-jobs?limit=101', '/api/queues/mail/throughput']) {
      expect((await call('GET', url)).statusCode, url).toBe(400);
    }
    expect((await call('POST', '/api/queues/scan/remove-stuck', ROOT, { olderThanMs: -1 })).statusCode).toBe(400);
  });

  it('throughput counts every job the workers finished, per minute, though BullMQ kept one completed job', async () => {
    const empty = await throughput('scan', 5);
    expect(empty.buckets).toHaveLength(5);
    expect(empty.total).toEqual({ completed: 0, failed: 0, cancelled: 0 });
    expect(Date.parse(empty.buckets[4]!.minute)).toBe(Math.floor(Date.now() / 60_000) * 60_000);

    const scans = await Promise.all([1, 2, 3, 4, 5].map(() => enqueue('scan:quick', 'web')));
    const lost = await enqueue('scan:quick', 'gone', { attempts: 1 });
    // Two attempts, one job: it counts once, as failed.
    const disk = await enqueue('update:server', 'disk', { attempts: 2, backoffMs: 100 });
    for (const id of [...scans, lost, disk]) await finished(id);
    const hang = await enqueue('update:server', 'hang');
    await waitForJob(app, hang, ['active']);
    expect((await call('POST', `/api/jobs/${hang}/cancel`, OPS)).statusCode).toBeLessThan(300);
    expect((await waitForJob(app, hang)).state).toBe('cancelled');
    expect((await waitForJob(app, lost)).state).toBe('failed');
    expect((await call('GET', '/api/queues/scan')).json().data.counts.completed).toBe(1);

    const scan = await until('scan throughput', () => throughput('scan'), (t) => t.total.completed + t.total.failed >= 6);
    expect(scan.total).toEqual({ completed: 5, failed: 1, cancelled: 0 });
    expect(scan).toMatchObject({ queue: 'scan', windowMin: 60, perMinute: { completed: 0.08, failed: 0.02, cancelled: 0 } });
    expect(scan.buckets).toHaveLength(60);
    expect(scan.buckets.reduce((n, b) => n + b.completed, 0)).toBe(5);
    expect(Date.parse(scan.from)).toBe(Date.parse(scan.buckets[0]!.minute));
    const update = await until('update throughput', () => throughput('update'), (t) => t.total.failed + t.total.cancelled >= 2);
    expect(update.total).toEqual({ completed: 0, failed: 1, cancelled: 1 });
    // The last minute alone has them too (unless the minute turned meanwhile: then the window of two has them).
    const recent = await throughput('scan', 2);
    expect(recent.total.completed).toBe(5);
  });

  it('slow-jobs: the latest finished jobs, longest run first, with their server, tenant and outcome', async () => {
    // One after the other, the slow one last: it is the completed job BullMQ keeps.
    await finished(await enqueue('update:server', 'quick'));
    const slowFail = await enqueue('update:server', 'slow-fail', { attempts: 1 });
    await finished(slowFail);
    const slow = await enqueue('update:server', 'slow', {}, OTHER);
    await finished(slow);

    const res = await call('GET', '/api/queues/update/slow-jobs?limit=3');
    expect(res.statusCode, res.body).toBe(200);
    const { jobs, scanned } = res.json().data as { scanned: number; jobs: Array<{ jobId: string; durationMs: number }> };
    // One completed job kept (COMPLETED_RETENTION_COUNT=1), and the failed ones.
    expect(scanned).toBeGreaterThanOrEqual(3);
    expect(jobs).toHaveLength(3);
    expect(jobs[0]).toMatchObject({ jobId: slow, type: 'update:server', state: 'completed', serverId: 'slow', tenant: 'globex' });
    expect(jobs[0]!.durationMs).toBeGreaterThanOrEqual(1500);
    expect(jobs[1]).toMatchObject({ jobId: slowFail, state: 'failed', serverId: 'slow-fail', tenant: 'ops' });
    expect(jobs[1]!.durationMs).toBeGreaterThanOrEqual(800);
    for (let i = 1; i < jobs.length; i++) expect(jobs[i - 1]!.durationMs).toBeGreaterThanOrEqual(jobs[i]!.durationMs);
    const view = (await call('GET', `/api/jobs/${slow}`, OTHER)).json().data;
    expect(res.json().data.jobs[0]).toMatchObject({ finishedAt: view.finishedAt, startedAt: view.processedAt, durationMs: Date.parse(view.finishedAt) - Date.parse(view.processedAt) });
    // The cancelled one of the test before, among them when asked for more.
    const all = (await call('GET', '/api/queues/update/slow-jobs?limit=100')).json().data.jobs as Array<{ state: string }>;
    expect(all.map((j) => j.state)).toContain('cancelled');
    expect((await call('GET', '/api/queues/backup/slow-jobs')).json().data).toEqual({ queue: 'backup', scanned: 0, jobs: [] });
  });

  it('remove-stuck stops the work of a stuck job and removes it: no job, no index entry, no running command', async () => {
    const young = await call('POST', '/api/queues/update/remove-stuck', ROOT, { olderThanMs: 3_600_000 });
    expect(young.json().data).toEqual({ queue: 'update', removed: 0, jobs: [] });

    const id = await enqueue('update:server', 'hang', { attempts: 3 });
    await waitForJob(app, id, ['active']);
    const commandKey = redisKeys(app.config.queuePrefix).runningCommand('hang');
    const entry = await until('the running command', () => app.redis.get(commandKey), (v) => v !== null);
    const { pgid } = JSON.parse(entry!) as { pgid: number };
    expect(groupAlive(pgid)).toBe(true);

    const res = await call('POST', '/api/queues/update/remove-stuck', ROOT, { olderThanMs: 0 });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().data).toEqual({ queue: 'update', removed: 1, jobs: [id] });
    expect((await call('GET', `/api/jobs/${id}`, OPS)).statusCode).toBe(404);
    const listed = (await call('GET', '/api/jobs?queue=update&limit=100', OPS)).json().data.jobs as Array<{ id: string }>;
    expect(listed.map((j) => j.id)).not.toContain(id);
    expect(await app.redis.get(commandKey)).toBeNull();
    await until('the command ended', async () => groupAlive(pgid), (alive) => !alive, 5000);
    // It is not run again: nothing of the queue is waiting, active or delayed.
    await new Promise((r) => setTimeout(r, 500));
    expect((await call('GET', '/api/queues/update')).json().data.counts).toMatchObject({ waiting: 0, active: 0, delayed: 0 });
  });
});

// No workers in the app: jobs stay waiting, and the test plays the hung worker itself.
describe('drain --delay and remove-stuck of a hung worker, without workers', () => {
  let app: FastifyInstance;
  const { call, enqueue } = helpers(() => app);

  beforeAll(async () => {
    app = await makeApp({
      env: { WORKERS: 'off' },
      servers: [
        { id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'globex-web', tenant: 'globex', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'hang', tenant: 'ops', host: '127.0.0.1', update: { command: HANG, timeoutSec: 600 } },
      ],
    });
  });
  afterAll(() => app.close());

  it('drain with delayMs keeps every waiting job, the same job, delayed until now + delayMs; delayed jobs are left alone', async () => {
    const plain = await enqueue('scan:quick', 'web');
    const urgent = await enqueue('scan:full', 'web', { priority: 1, attempts: 5 });
    const theirs = await enqueue('scan:quick', 'globex-web', {}, OTHER);
    // A job without a priority waits in BullMQ's wait list rather than the prioritized set: moved as well.
    const unprioritized = await enqueue('scan:quick', 'web');
    await (await Job.fromId(app.queues.scan, unprioritized))!.changePriority({ priority: 0 });
    const later = await enqueue('scan:quick', 'web', { delay: 60_000 });
    const before = Object.fromEntries(await Promise.all([plain, urgent, theirs, unprioritized].map(async (id) => [id, await app.jobs.store.get(id, undefined)])));

    const started = Date.now();
    const res = await call('POST', '/api/queues/scan/drain', ROOT, { delayMs: DAY_MS });
    expect(res.statusCode, res.body).toBe(200);
    const data = res.json().data;
    expect(data).toMatchObject({ queue: 'scan', removed: { waiting: 0, delayed: 0 }, movedToDelayed: 4 });
    expect(Date.parse(data.delayedUntil)).toBeGreaterThanOrEqual(started + DAY_MS);
    expect(Date.parse(data.delayedUntil)).toBeLessThanOrEqual(Date.now() + DAY_MS);

    for (const [id, headers] of [[plain, OPS], [urgent, OPS], [theirs, OTHER], [unprioritized, OPS]] as const) {
      const got = await call('GET', `/api/jobs/${id}`, headers);
      expect(got.statusCode).toBe(200);
      const { state, ...rest } = got.json().data;
      const { state: was, ...kept } = before[id]!;
      expect(was).toBe('waiting');
      expect(state).toBe('delayed');
      expect(rest).toEqual(kept);
      const explained = (await call('GET', `/api/jobs/${id}/explain`, headers)).json().data;
      const delayed = explained.reasons.find((r: { code: string }) => r.code === 'DELAYED');
      expect(Date.parse(delayed.until)).toBe(Date.parse(data.delayedUntil));
      const log = (await call('GET', `/api/jobs/${id}/logs`, headers)).json().data.lines as string[];
      expect(log.at(-1)).toMatch(/^\[jobs-api\] delayed by an operator until /);
    }
    const job = (id: string) => Job.fromId(app.queues.scan, id);
    expect((await job(urgent))!.opts).toMatchObject({ priority: 1, attempts: 5 });
    expect((await job(plain))!.opts.priority).toBe(QUEUES.scan.defaultPriority);
    expect((await job(unprioritized))!.priority).toBe(0);
    expect(before[theirs]!.tenant).toBe('globex');
    // The listing index keeps them (same ids), each tenant's its own.
    const mine = (await call('GET', '/api/jobs?queue=scan&limit=100', OPS)).json().data.jobs as Array<{ id: string; state: string }>;
    expect(mine.filter((j) => [plain, urgent, unprioritized].includes(j.id)).map((j) => j.state)).toEqual(['delayed', 'delayed', 'delayed']);
    expect((await call('GET', '/api/jobs?queue=scan', OTHER)).json().data.jobs.map((j: { id: string }) => j.id)).toEqual([theirs]);
    // The job delayed before keeps its own due time.
    const laterDue = (await call('GET', `/api/jobs/${later}/explain`, OPS)).json().data.reasons.find((r: { code: string }) => r.code === 'DELAYED').until;
    expect(Date.parse(laterDue)).toBeLessThan(started + 120_000);
    expect((await call('GET', '/api/queues/scan')).json().data.counts).toMatchObject({ waiting: 0, delayed: 5 });

    // Promoted, a moved job waits again in its place; the flag-less drain removes it as it always did.
    expect((await call('POST', `/api/jobs/${urgent}/promote`, OPS)).statusCode).toBe(200);
    expect((await app.jobs.store.get(urgent, undefined))!.state).toBe('waiting');
    const removed = await call('POST', '/api/queues/scan/drain');
    // The same answer as before delayMs existed.
    expect(removed.json().data).toEqual({ queue: 'scan', removed: { waiting: 1, delayed: 0 } });
    expect(await app.jobs.store.get(urgent, undefined)).toBeUndefined();
    expect((await call('POST', '/api/queues/scan/drain', ROOT, { delayMs: DAY_MS })).json().data.movedToDelayed).toBe(0);
  });

  it('drain refuses a delay out of bounds, or with delayed: true', async () => {
    for (const body of [{ delayMs: 999 }, { delayMs: 30 * DAY_MS + 1 }, { delayMs: 60_000, delayed: true }, { delayMs: '1h' }]) {
      const res = await call('POST', '/api/queues/scan/drain', ROOT, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
    expect((await call('POST', '/api/queues/scan/drain', ROOT, { delayMs: 30 * DAY_MS })).statusCode).toBe(200);
  });

  it('remove-stuck removes a job whose worker is hung: moved by force after the grace time, then removed', async () => {
    const id = await enqueue('update:server', 'hang', { attempts: 3 });
    // A worker that takes the job and never answers: no cancel listener, no end.
    const connection = createRedis(app.config.redis!, 'worker', 'test:hung-worker');
    const hung = new Worker(QUEUES.update.redisName, () => new Promise(() => {}), { connection, prefix: app.config.queuePrefix });
    // Its lock renewals fail once the job is gone: expected.
    hung.on('error', () => {});
    try {
      await waitForJob(app, id, ['active']);
      const started = Date.now();
      const res = await call('POST', '/api/queues/update/remove-stuck', ROOT, { olderThanMs: 0 });
      expect(res.json().data).toEqual({ queue: 'update', removed: 1, jobs: [id] });
      expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
      expect(await app.jobs.store.get(id, undefined)).toBeUndefined();
      expect((await call('GET', '/api/jobs?queue=update', OPS)).json().data.jobs).toEqual([]);
      expect(await app.redis.get(redisKeys(app.config.queuePrefix).cancelRequest(id))).toBeNull();
      expect((await call('GET', '/api/queues/update')).json().data.counts).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0 });
    } finally {
      await hung.close(true);
      connection.disconnect();
    }
  });
});
