import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';
import { nodesOf } from '../../src/redis/connection.js';

const OPS = auth({ tenant: 'ops' });
const OTHER = auth({ tenant: 'globex' });
const ROOT = auth(ADMIN);
const node = process.execPath;
const DISK = 'update command exited with code N; last output:';

type Group = { errorType: string; count: number; queues: string[]; newest: { jobId: string } };

describe('the dead-letter aggregate: grouping and replay cost what they return', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await makeApp({
      servers: [
        { id: 'disk', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: disk full on /var'); process.exit(2)"] } },
        { id: 'gone', tenant: 'ops', host: 'no-such-host.invalid', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'globex-web', tenant: 'globex', host: '127.0.0.1', update: { command: [node, '-e', 'process.exit(9)'] } },
        { id: 'hang', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 600 } },
      ],
    });
  });
  afterAll(() => app.close());

  const enqueue = async (type: string, serverId: string, headers = OPS) => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers, payload: { type, data: { serverId }, options: { attempts: 1 } } });
    expect(res.statusCode).toBe(202);
    return res.json().data.jobId as string;
  };
  const failed = async (type: string, serverId: string, n: number, headers = OPS) => {
    const ids = await Promise.all(Array.from({ length: n }, () => enqueue(type, serverId, headers)));
    for (const id of ids) expect((await waitForJob(app, id)).state).toBe('failed');
    return ids;
  };
  const groups = async (headers = OPS, query = '') => {
    const res = await app.inject({ url: `/api/dead-letters/errors${query}`, headers });
    expect(res.statusCode).toBe(200);
    return res.json().data as { scanned: number; truncated: boolean; groups: Group[] };
  };
  const counts = async (headers = OPS) => Object.fromEntries((await groups(headers)).groups.map((g) => [g.errorType, g.count]));

  let disk: string[] = [];
  let scans: string[] = [];

  it('counts every failure by tenant and error type as soon as it is asked, across queues; admin sees every tenant; a cancel is no dead letter', async () => {
    disk = await failed('update:server', 'disk', 4);
    scans = await failed('scan:quick', 'gone', 2);
    await failed('update:server', 'globex-web', 3, OTHER);
    const hang = await enqueue('update:server', 'hang');
    await waitForJob(app, hang, ['active']);
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${hang}/cancel`, headers: OPS })).json().data.outcome).toBe('cancelled');

    const mine = await groups();
    expect(mine.truncated).toBe(false);
    expect(mine.scanned).toBe(6);
    const scanType = mine.groups.find((g) => g.queues[0] === 'scan')!.errorType;
    expect(Object.fromEntries(mine.groups.map((g) => [g.errorType, [g.count, g.queues]]))).toEqual({ [DISK]: [4, ['update']], [scanType]: [2, ['scan']] });
    // The newest example is the last of the failures of that type.
    expect(disk).toContain(mine.groups.find((g) => g.errorType === DISK)!.newest.jobId);
    expect(await counts(OTHER)).toEqual({ [DISK]: 3 });
    // Admin: both tenants' failures of one cause in one group.
    expect((await counts(ROOT))[DISK]).toBe(7);
    expect((await groups(OPS, '?queue=scan')).groups.map((g) => g.count)).toEqual([2]);
  });

  it('lists and replays one error type from its own index', async () => {
    const res = await app.inject({ url: `/api/dead-letters?errorType=${encodeURIComponent(DISK)}&limit=100`, headers: OPS });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.jobs.map((j: { id: string }) => j.id).sort()).toEqual([...disk].sort());
    expect(res.json().data.jobs.every((j: { errorType: string; tenant: string }) => j.errorType === DISK && j.tenant === 'ops')).toBe(true);

    const replay = await app.inject({ method: 'POST', url: '/api/dead-letters/replay', headers: OPS, payload: { errorType: DISK, limit: 2 } });
    expect(replay.statusCode).toBe(200);
    expect(replay.json().data.count).toBe(2);
    expect(replay.json().data.replayed.every((r: { from: string }) => disk.includes(r.from))).toBe(true);
    for (const r of replay.json().data.replayed as Array<{ to: string }>) await waitForJob(app, r.to);
    // The replays failed for the same cause: two more of that type (the originals stay, marked replayed).
    expect((await counts())[DISK]).toBe(6);
  });

  it('a retry or a removal through the API leaves the count at once', async () => {
    const before = (await counts())[DISK]!;
    // Paused, so that the retried job cannot fail again before it is counted.
    await app.queues.update.pause();
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${disk[0]}/retry`, headers: OPS })).statusCode).toBe(200);
    expect((await counts())[DISK]).toBe(before - 1);
    expect((await app.inject({ method: 'DELETE', url: `/api/dead-letters/${disk[1]}`, headers: OPS })).statusCode).toBe(200);
    expect((await counts())[DISK]).toBe(before - 2);
    await app.queues.update.resume();
    await waitForJob(app, disk[0]!);
    expect((await counts())[DISK]).toBe(before - 1);
  });

  it('a job removed behind the API (retention, another tool) is never an example, and leaves its count with the next sweep', async () => {
    const before = await groups();
    const scanGroup = before.groups.find((g) => g.queues[0] === 'scan')!;
    await app.queues.scan.remove(scanGroup.newest.jobId);
    const after = await groups();
    const now = after.groups.find((g) => g.errorType === scanGroup.errorType)!;
    expect(now.newest.jobId).not.toBe(scanGroup.newest.jobId);
    expect(scans).toContain(now.newest.jobId);
    expect(now.count).toBe(1);
    // Removed without an example's check, and without any grouping in between: the sweep forgets it.
    await app.queues.scan.remove(now.newest.jobId);
    await app.jobs.store.sweepStep('scan', '0', 10_000, Date.now() + 3_600_000);
    expect((await groups()).groups.find((g) => g.errorType === scanGroup.errorType)).toBeUndefined();
  });

  it('a failure that reaches Redis after later ones were counted (a worker clock behind) is counted by its worker', async () => {
    const before = (await counts())[DISK] ?? 0;
    // Every failure so far has been read, and the read has moved an hour ahead: a grouping reads nothing older.
    for (const n of nodesOf(app.redis)) await n.set(app.jobs.store.dead.reconcileKeys('update')[2] + 'mark', String(Date.now() + 3_600_000));
    await failed('update:server', 'disk', 1);
    expect((await counts())[DISK]).toBe(before + 1);
  });

  it('rebuilds itself from the failed jobs when its keys are gone (an upgrade from a version without it)', async () => {
    const expected = await counts(ROOT);
    for (const n of nodesOf(app.redis)) {
      const keys = await n.keys('*:dead:*');
      if (keys.length) for (const k of keys) await n.del(k);
    }
    expect(await counts(ROOT)).toEqual(expected);
  });
});
