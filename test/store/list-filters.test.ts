import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES, type JobEnvelope } from '../../src/jobs/index.js';
import { redisKeys } from '../../src/redis/keys.js';
import { ADMIN, auth, makeApp } from '../helpers.js';

// Workers are off: jobs stay where the API put them.
const servers = [
  { id: 'web', tenant: 'ops', host: '127.0.0.1', backup: { paths: ['config/sample/www'] }, scan: { ports: [1] } },
  { id: 'db', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1] } },
  { id: 'mail', tenant: 'globex', host: '127.0.0.1', scan: { ports: [25] } },
];
const OPS = auth({ tenant: 'ops' });
const GLOBEX = auth({ tenant: 'globex' });
const ADMIN_H = auth(ADMIN);

type Page = { jobs: Array<{ id: string; data: { serverId: string }; createdAt: string }>; nextCursor: string | null };

describe('listing jobs by server and by creation time', () => {
  let app: FastifyInstance;
  const ids: Record<string, string[]> = { early: [], late: [] };
  let between = '';

  beforeAll(async () => {
    app = await makeApp({ env: { WORKERS: 'off' }, servers });
    const submit = async (payload: object, headers = OPS) => {
      const res = await app.inject({ method: 'POST', url: '/api/jobs', headers, payload });
      expect(res.statusCode, res.body).toBe(202);
      return res.json().data.jobId as string;
    };
    for (const serverId of ['web', 'web', 'db']) ids.early!.push(await submit({ type: 'scan:quick', data: { serverId } }));
    ids.early!.push(await submit({ type: 'backup:manual', data: { serverId: 'web' } }));
    ids.early!.push(await submit({ type: 'scan:full', data: { serverId: 'mail' } }, GLOBEX));
    await new Promise((r) => setTimeout(r, 20));
    between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    for (const serverId of ['web', 'db']) ids.late!.push(await submit({ type: 'scan:quick', data: { serverId } }));
    ids.late!.push(await submit({ type: 'scan:quick', data: { serverId: 'mail' } }, GLOBEX));
  });
  afterAll(() => app?.close());

  /** Every page of a listing, following nextCursor. */
  async function all(query: string, headers = OPS, limit = 2): Promise<Page['jobs']> {
    const out: Page['jobs'] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 100; i++) {
      const res = await app.inject({ url: `/api/jobs?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, headers });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json().data as Page;
      out.push(...page.jobs);
      cursor = page.nextCursor;
      if (!cursor) return out;
    }
    throw new Error('no end of the listing');
  }

  it('lists a server\'s jobs across queues, newest first, page after page, each once', async () => {
    const web = await all('serverId=web');
    expect(web.map((j) => j.data.serverId)).toEqual(['web', 'web', 'web', 'web']);
    expect(new Set(web.map((j) => j.id)).size).toBe(4);
    expect(web.map((j) => j.createdAt)).toEqual([...web.map((j) => j.createdAt)].sort().reverse());
    expect((await all('serverId=web&queue=backup')).map((j) => j.id)).toEqual([ids.early![3]]);
    expect((await all('serverId=db&type=scan:quick')).length).toBe(2);
  });

  it('never shows another tenant\'s server: its jobs are not listed, for admin they are', async () => {
    expect(await all('serverId=mail')).toEqual([]);
    expect((await all('serverId=web', GLOBEX)).length).toBe(0);
    expect((await all('serverId=mail', ADMIN_H)).length).toBe(2);
    expect((await all('serverId=nowhere', ADMIN_H)).length).toBe(0);
  });

  it('filters by creation time: createdAfter inclusive, createdBefore exclusive, with or without a server', async () => {
    const after = await all(`createdAfter=${between}`);
    expect(after.map((j) => j.id).sort()).toEqual(ids.late!.slice(0, 2).sort());
    const before = await all(`createdBefore=${between}`, OPS, 1);
    expect(before.map((j) => j.id).sort()).toEqual(ids.early!.slice(0, 4).sort());
    expect((await all(`serverId=web&createdAfter=${between}`)).map((j) => j.id)).toEqual([ids.late![0]]);
    const first = after.at(-1)!.createdAt;
    expect((await all(`createdAfter=${first}&createdBefore=${first.replace(/\.(\d+)Z$/, (_, ms) => `.${String(Number(ms) + 1).padStart(3, '0')}Z`)}`)).map((j) => j.id)).toEqual([after.at(-1)!.id]);
    expect(await all(`createdAfter=2099-01-01T00:00:00Z`)).toEqual([]);
  });

  it('answers 400 for a time that is not ISO 8601, an empty range or a server id that cannot be one', async () => {
    for (const query of ['createdAfter=yesterday', 'createdBefore=2026-12-01', `createdAfter=${between}&createdBefore=${between}`, 'serverId=Not_A_Server']) {
      const res = await app.inject({ url: `/api/jobs?${query}`, headers: OPS });
      expect(res.statusCode, query).toBe(400);
      expect(res.json()).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
    }
  });

  it('costs what the page holds: a server\'s job is found behind thousands of other servers\' jobs', async () => {
    const envelope = (serverId: string): JobEnvelope => ({ tenant: 'ops', requestedBy: 'test', recordId: 'r', input: { serverId, scan_type: 'quick' } }) as JobEnvelope;
    for (let i = 0; i < 5; i++) await app.jobs.store.addBulk(Array.from({ length: 500 }, () => ({ type: 'scan:quick' as const, envelope: envelope('db') })));
    const res = await app.inject({ url: `/api/jobs?serverId=web&queue=scan&limit=5`, headers: OPS });
    const page = res.json().data as Page;
    expect(page.jobs.length).toBe(3);
    expect(page.nextCursor).toBeNull();
  });

  it('finds jobs enqueued before the server indexes existed once the index sweep has walked them', async () => {
    const [jobId] = ids.early!;
    const { index } = redisKeys(app.config.queuePrefix);
    // As an earlier version left it: in the job indexes, in no server index.
    await app.redis.zrem(index.server('scan', 'web'), jobId!);
    await app.redis.hdel(index.serverOf('scan'), jobId!);
    expect((await all('serverId=web&queue=scan', OPS, 100)).map((j) => j.id)).not.toContain(jobId);
    for (const queue of QUEUE_NAMES) {
      let cursor = '0';
      do cursor = (await app.jobs.store.sweepStep(queue, cursor, 1000)).cursor;
      while (cursor !== '0');
    }
    expect((await all('serverId=web&queue=scan', OPS, 100)).map((j) => j.id)).toContain(jobId);
  });
});
