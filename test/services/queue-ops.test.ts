import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

const OPS = auth({ tenant: 'ops' });
const OTHER = auth({ tenant: 'globex' });
const ROOT = auth(ADMIN);
const node = process.execPath;

describe('operating the queues', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await makeApp({
      servers: [
        { id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'disk', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: disk full on /var'); process.exit(2)"] } },
        { id: 'mirror', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', "console.error('timeout talking to mirror 10.0.0.7'); process.exit(1)"] } },
        { id: 'hang', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 600 } },
        { id: 'globex-web', tenant: 'globex', host: '127.0.0.1', update: { command: [node, '-e', 'process.exit(9)'] } },
        { id: 'globex-gone', tenant: 'globex', host: 'no-such-host.invalid', scan: { ports: [1], timeoutMs: 200 } },
      ],
    });
  });
  afterAll(() => app.close());

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, headers = ROOT, payload?: object) =>
    app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
  const enqueue = async (type: string, serverId: string, options: object = {}, headers = OPS) => {
    const res = await call('POST', '/api/jobs', headers, { type, data: { serverId }, options });
    expect(res.statusCode).toBe(202);
    return res.json().data.jobId as string;
  };
  const stateOf = async (id: string) => (await app.jobs.store.get(id, undefined))?.state;

  it('queue operations need admin', async () => {
    for (const [method, url] of [['GET', '/api/queues'], ['POST', '/api/queues/scan/pause'], ['GET', '/api/queues/scan/stuck']] as const) {
      const res = await call(method, url, OPS);
      expect(res.statusCode).toBe(403);
    }
    expect((await call('GET', '/api/queues/nope')).statusCode).toBe(400);
  });

  it('GET /api/queues: counts, paused and workers online per queue', async () => {
    const res = await call('GET', '/api/queues');
    expect(res.statusCode).toBe(200);
    const list = res.json().data as Array<{ queue: string; paused: boolean; workers: number; concurrency: number }>;
    expect(list.map((q) => q.queue)).toEqual(['backup', 'scan', 'update']);
    expect(list.find((q) => q.queue === 'scan')).toMatchObject({ paused: false, concurrency: 5 });
    expect(list.every((q) => q.workers >= 1)).toBe(true);
  });

  it('a paused queue holds new jobs until it is resumed', async () => {
    expect((await call('POST', '/api/queues/scan/pause')).json().data).toMatchObject({ queue: 'scan', paused: true });
    const id = await enqueue('scan:quick', 'web');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await stateOf(id)).toBe('waiting');
    expect((await call('GET', '/api/queues/scan')).json().data).toMatchObject({ paused: true, counts: { waiting: 1 } });
    expect((await call('POST', '/api/queues/scan/resume')).json().data.paused).toBe(false);
    expect((await waitForJob(app, id)).state).toBe('completed');
  });

  it('drain removes waiting jobs, and delayed ones when asked', async () => {
    await call('POST', '/api/queues/scan/pause');
    const waiting = [await enqueue('scan:quick', 'web'), await enqueue('scan:quick', 'web')];
    const delayed = await enqueue('scan:quick', 'web', { delay: 60_000 });
    const first = await call('POST', '/api/queues/scan/drain');
    expect(first.json().data).toEqual({ queue: 'scan', removed: { waiting: 2, delayed: 0 } });
    for (const id of waiting) expect(await stateOf(id)).toBeUndefined();
    expect(await stateOf(delayed)).toBe('delayed');
    const second = await call('POST', '/api/queues/scan/drain', ROOT, { delayed: true });
    expect(second.json().data.removed).toEqual({ waiting: 0, delayed: 1 });
    await call('POST', '/api/queues/scan/resume');
  });

  it('clean removes finished jobs older than a bound; running jobs cannot be cleaned', async () => {
    const id = await enqueue('scan:quick', 'web');
    await waitForJob(app, id);
    const kept = await call('POST', '/api/queues/scan/clean', ROOT, { state: 'completed', olderThanMs: 3_600_000 });
    expect(kept.json().data.removed).toBe(0);
    const res = await call('POST', '/api/queues/scan/clean', ROOT, { state: 'completed', olderThanMs: 0, limit: 1000 });
    expect(res.json().data.jobs).toContain(id);
    expect(await stateOf(id)).toBeUndefined();
    const bad = await call('POST', '/api/queues/scan/clean', ROOT, { state: 'active' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/body\.state/);
  });

  it('bulk retry: counts with dryRun, then retries only the failures that match', async () => {
    const disk = [await enqueue('update:server', 'disk', { attempts: 1 }), await enqueue('update:server', 'disk', { attempts: 1 })];
    const mirror = await enqueue('update:server', 'mirror', { attempts: 1 });
    for (const id of [...disk, mirror]) expect((await waitForJob(app, id)).state).toBe('failed');

    const dry = await call('POST', '/api/queues/update/retry', ROOT, { errorContains: 'DISK FULL', dryRun: true });
    expect(dry.json().data).toMatchObject({ dryRun: true, matched: 2, retried: 0 });
    expect(dry.json().data.jobs.sort()).toEqual([...disk].sort());
    expect(await stateOf(disk[0]!)).toBe('failed');

    const real = await call('POST', '/api/queues/update/retry', ROOT, { errorContains: 'disk full' });
    expect(real.json().data).toMatchObject({ dryRun: false, matched: 2, retried: 2 });
    for (const id of disk) expect(['waiting', 'active', 'failed']).toContain(await stateOf(id));
    for (const id of disk) await waitForJob(app, id, ['failed']);
    expect(await stateOf(mirror)).toBe('failed');
  });

  it('dead letters: listed per tenant, grouped by error type, replayed, removed', async () => {
    await waitForJob(app, await enqueue('update:server', 'globex-web', { attempts: 1 }, OTHER));
    // Dead letters of two queues (on a Cluster, two nodes).
    await waitForJob(app, await enqueue('scan:quick', 'globex-gone', { attempts: 1 }, OTHER));

    const mine = (await call('GET', '/api/dead-letters?queue=update&limit=100', OPS)).json().data;
    expect(mine.jobs.length).toBeGreaterThanOrEqual(3);
    expect(mine.jobs.every((j: { tenant: string; state: string }) => j.tenant === 'ops' && j.state === 'failed')).toBe(true);
    const theirs = (await call('GET', '/api/dead-letters', OTHER)).json().data.jobs;
    expect(theirs.map((j: { queue: string }) => j.queue).sort()).toEqual(['scan', 'update']);
    expect(theirs.find((j: { queue: string }) => j.queue === 'update')).toMatchObject({ tenant: 'globex', errorType: 'update command exited with code N; last output:', replayedAs: null });

    const filtered = (await call('GET', '/api/dead-letters?errorContains=mirror', OPS)).json().data.jobs;
    expect(filtered).toHaveLength(1);

    const groups = (await call('GET', '/api/dead-letters/errors', OPS)).json().data;
    expect(groups.truncated).toBe(false);
    const byType = Object.fromEntries(groups.groups.map((g: { errorType: string; count: number }) => [g.errorType, g.count]));
    expect(byType).toEqual({ 'update command exited with code N; last output:': 3 });
    expect(groups.groups[0].newest).toMatchObject({ type: 'update:server', failedReason: expect.stringContaining('last output') });

    const target = filtered[0].id as string;
    const replay = await call('POST', '/api/dead-letters/replay', OPS, { ids: [target, 'update_missingmissingmissing12'] });
    expect(replay.statusCode).toBe(200);
    const { replayed, skipped } = replay.json().data;
    expect(replayed).toHaveLength(1);
    expect(replayed[0].from).toBe(target);
    expect(replayed[0].to).not.toBe(target);
    expect(skipped).toEqual([{ id: 'update_missingmissingmissing12', reason: 'no such job' }]);
    const copy = await waitForJob(app, replayed[0].to);
    expect(copy).toMatchObject({ type: 'update:server', data: { serverId: 'mirror' }, maxAttempts: 1, state: 'failed' });
    const again = (await call('POST', '/api/dead-letters/replay', OPS, { ids: [target] })).json().data;
    expect(again).toMatchObject({ count: 0, skipped: [{ id: target, reason: `already replayed as ${replayed[0].to}` }] });
    expect((await call('GET', '/api/dead-letters?errorContains=mirror&limit=100', OPS)).json().data.jobs.find((j: { id: string }) => j.id === target).replayedAs).toBe(replayed[0].to);

    // Another tenant cannot replay or remove ops' dead letters.
    expect((await call('POST', '/api/dead-letters/replay', OTHER, { ids: [target] })).json().data.skipped).toEqual([{ id: target, reason: 'no such job' }]);
    expect((await call('DELETE', `/api/dead-letters/${target}`, OTHER)).statusCode).toBe(404);
    const del = await call('DELETE', `/api/dead-letters/${target}`, OPS);
    expect(del.statusCode).toBe(200);
    expect(await stateOf(target)).toBeUndefined();

    // Replay by filter.
    const byFilter = (await call('POST', '/api/dead-letters/replay', OPS, { errorContains: 'disk full', limit: 1 })).json().data;
    expect(byFilter.count).toBe(1);
  });

  it('promote runs a delayed job now; anything else is a 409', async () => {
    const id = await enqueue('scan:quick', 'web', { delay: 60_000 });
    const res = await call('POST', `/api/jobs/${id}/promote`, OPS);
    expect(res.statusCode).toBe(200);
    expect(['waiting', 'active', 'completed']).toContain(res.json().data.state);
    expect((await waitForJob(app, id)).state).toBe('completed');
    const again = await call('POST', `/api/jobs/${id}/promote`, OPS);
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('JOB_NOT_DELAYED');
    expect((await call('POST', `/api/jobs/${id}/promote`, OTHER)).statusCode).toBe(404);
  });

  it('GET /api/workers: processes online per queue and what they did since they started', async () => {
    expect((await call('GET', '/api/workers', OPS)).statusCode).toBe(403);
    await new Promise((r) => setTimeout(r, 1200));
    const res = await call('GET', '/api/workers', auth({ tenant: 'ops', scope: 'metrics:read' }));
    expect(res.statusCode).toBe(200);
    const { queues, processes } = res.json().data;
    expect(queues.scan).toMatchObject({ online: 1, concurrency: 5 });
    expect(queues.scan.completed).toBeGreaterThanOrEqual(3);
    expect(queues.update.failed).toBeGreaterThanOrEqual(5);
    expect(queues.update.processed).toBe(queues.update.completed + queues.update.failed + queues.update.retried);
    expect(processes.map((p: { pid: number }) => p.pid)).toContain(process.pid);
  });

  it('stuck jobs are listed and moved to failed, from where they can be retried', async () => {
    const id = await enqueue('update:server', 'hang', { attempts: 1 });
    await waitForJob(app, id, ['active']);
    await new Promise((r) => setTimeout(r, 700));
    expect((await call('GET', '/api/queues/update/stuck?olderThanMs=600000')).json().data.jobs).toEqual([]);
    const stuck = (await call('GET', '/api/queues/update/stuck?olderThanMs=500')).json().data.jobs;
    expect(stuck.map((j: { id: string }) => j.id)).toEqual([id]);
    const res = await call('POST', '/api/queues/update/unstick', ROOT, { olderThanMs: 500 });
    expect(res.json().data).toEqual({ queue: 'update', moved: 1, jobs: [id] });
    const failed = await waitForJob(app, id, ['failed'], 5000);
    expect(failed.failedReason).toBe('unstuck by an operator: active for more than 500 ms');
    expect((await call('POST', `/api/jobs/${id}/retry`, OPS)).statusCode).toBe(200);
    await waitForJob(app, id, ['active']);
    await call('POST', `/api/jobs/${id}/cancel`, OPS);
  });
});
