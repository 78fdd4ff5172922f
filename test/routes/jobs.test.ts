import { queueCounts } from '../../src/observability/queue-stats.js';
import type { FastifyInstance } from 'fastify';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, auth, makeApp } from '../helpers.js';

// Workers are off here: jobs stay where the API put them, so states are exact.
const servers = [
  { id: 'web-1', tenant: 'acme', host: '127.0.0.1', backup: { paths: ['config/sample/www'] }, scan: { ports: [1] }, update: { command: ['true'] } },
  { id: 'scan-only', tenant: 'acme', host: '127.0.0.1', scan: { ports: [1] } },
  { id: 'globex-db', tenant: 'globex', host: '127.0.0.1', scan: { ports: [5432] } },
];

describe('jobs API', () => {
  let app: FastifyInstance;
  const acme = auth({ tenant: 'acme' });
  const globex = auth({ tenant: 'globex' });

  beforeAll(async () => {
    app = await makeApp({ env: { WORKERS: 'off' }, servers });
  });
  afterAll(() => app.close());

  const submit = (payload: unknown, headers: Record<string, string> = acme) =>
    app.inject({ method: 'POST', url: '/api/jobs', headers, payload: payload as object });

  describe('POST /api/jobs', () => {
    it('enqueues a job: 202, Location, an opaque id, waiting', async () => {
      const res = await submit({ type: 'scan:quick', data: { serverId: 'web-1' } });
      expect(res.statusCode).toBe(202);
      const { data } = res.json();
      expect(data).toMatchObject({ queue: 'scan', type: 'scan:quick', state: 'waiting' });
      expect(data.jobId).toMatch(/^scan_[A-Za-z0-9_-]{22}$/);
      expect(res.headers.location).toBe(`/api/jobs/${data.jobId}`);
      const second = (await submit({ type: 'scan:quick', data: { serverId: 'web-1' } })).json().data.jobId;
      expect(second).not.toBe(data.jobId);
    });

    it('applies options: a delayed job is delayed, priority and attempts are kept', async () => {
      const res = await submit({ type: 'backup:manual', data: { serverId: 'web-1' }, options: { delay: 60_000, priority: 5, attempts: 2 } });
      expect(res.statusCode).toBe(202);
      expect(res.json().data.state).toBe('delayed');
      const job = (await app.inject({ url: res.headers.location as string, headers: acme })).json().data;
      expect(job).toMatchObject({ state: 'delayed', maxAttempts: 2, data: { serverId: 'web-1', backup_type: 'full', compression: true, encryption: false } });
    });

    const bad: Array<[string, unknown, RegExp, string?]> = [
      ['a missing type', { data: { serverId: 'web-1' } }, /type/],
      ['an unknown type', { type: 'reboot', data: {} }, /type: must be one of backup:manual/],
      ['a missing serverId', { type: 'scan:full', data: {} }, /body\.data\.serverId/],
      ['a serverId that is not an id', { type: 'scan:full', data: { serverId: '../etc' } }, /body\.data\.serverId: must be a server id/],
      ['a wrong type of field', { type: 'backup:manual', data: { serverId: 'web-1', compression: 'yes' } }, /body\.data\.compression/],
      ['an unknown key in data', { type: 'scan:full', data: { serverId: 'web-1', path: '/etc' } }, /body\.data.*path/],
      ['a BullMQ internal in options', { type: 'scan:full', data: { serverId: 'web-1' }, options: { removeOnComplete: false } }, /body\.options.*removeOnComplete/],
      ['repeat in options', { type: 'scan:full', data: { serverId: 'web-1' }, options: { repeat: { every: 1 } } }, /repeat/],
      ['a priority out of range', { type: 'scan:full', data: { serverId: 'web-1' }, options: { priority: 9 } }, /body\.options\.priority/],
      ['negative delay', { type: 'scan:full', data: { serverId: 'web-1' }, options: { delay: -1 } }, /body\.options\.delay/],
      ['a server that does not exist', { type: 'scan:full', data: { serverId: 'nope' } }, /data\.serverId: there is no server "nope"/, 'UNKNOWN_SERVER'],
      ['another tenant\'s server', { type: 'scan:full', data: { serverId: 'globex-db' } }, /data\.serverId: there is no server "globex-db"/, 'UNKNOWN_SERVER'],
      ['a kind the server does not declare', { type: 'update:server', data: { serverId: 'scan-only' } }, /declares no "update" section/, 'KIND_NOT_DECLARED'],
      ['encryption without a key', { type: 'backup:manual', data: { serverId: 'web-1', encryption: true } }, /data\.encryption: encrypted backups need BACKUP_ENCRYPTION_KEY/, 'ENCRYPTION_NOT_CONFIGURED'],
      ['a restore of a backup that does not exist', { type: 'backup:restore', data: { serverId: 'web-1', backupId: '3b241101-e2bb-4255-8caf-4136c566a962' } }, /data\.backupId: server "web-1" has no backup "3b241101/, 'UNKNOWN_BACKUP'],
      ['a restore of something that is not a backup id', { type: 'backup:restore', data: { serverId: 'web-1', backupId: '../../etc' } }, /body\.data\.backupId/],
    ];
    for (const [what, payload, message, code] of bad) {
      it(`answers 400 to ${what}, naming the field`, async () => {
        const res = await submit(payload);
        expect(res.statusCode).toBe(400);
        const body = res.json();
        expect(body.success).toBe(false);
        expect(body.error.code).toBe(code ?? 'VALIDATION_ERROR');
        expect(body.error.message).toMatch(message);
        expect(body.requestId).toBeTruthy();
      });
    }

    it('answers 400 to a body that is not JSON, 415 to a wrong content type, 413 over 1 MiB', async () => {
      const broken = await app.inject({ method: 'POST', url: '/api/jobs', headers: { ...acme, 'content-type': 'application/json' }, payload: '{"type":' });
      expect(broken.statusCode).toBe(400);
      expect(broken.json().error.code).toBe('INVALID_JSON');
      const text = await app.inject({ method: 'POST', url: '/api/jobs', headers: { ...acme, 'content-type': 'text/plain' }, payload: 'scan web-1' });
      expect(text.statusCode).toBe(415);
      expect(text.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
      const huge = JSON.stringify({ type: 'scan:full', data: { serverId: 'web-1' }, pad: 'x'.repeat(1024 * 1024) });
      const big = await app.inject({ method: 'POST', url: '/api/jobs', headers: { ...acme, 'content-type': 'application/json' }, payload: huge });
      expect(big.statusCode).toBe(413);
      expect(big.json()).toMatchObject({ success: false, error: { code: 'PAYLOAD_TOO_LARGE' } });
    });

    it('answers through a real socket with x-request-id, echoing the caller\'s', async () => {
      const res = await request(app.server)
        .post('/api/jobs')
        .set(acme)
        .set('x-request-id', 'ci-run-42')
        .send({ type: 'scan:full', data: { serverId: 'web-1' } });
      expect(res.status).toBe(202);
      expect(res.headers['x-request-id']).toBe('ci-run-42');
      const missing = await request(app.server).get('/api/jobs/scan_AAAAAAAAAAAAAAAAAAAAAA').set(acme);
      expect(missing.status).toBe(404);
      expect(missing.headers['x-request-id']).toBe(missing.body.requestId);
    });
  });

  describe('POST /api/jobs/bulk', () => {
    // Its own app (own queue prefix), so the counts and listings of the other tests stay exact.
    let app: FastifyInstance;
    beforeAll(async () => {
      app = await makeApp({ env: { WORKERS: 'off' }, servers });
    });
    afterAll(() => app.close());
    const bulk = (jobs: unknown, headers: Record<string, string> = acme) =>
      app.inject({ method: 'POST', url: '/api/jobs/bulk', headers, payload: { jobs } as object });
    // The queue's counts as the product gives them: jobs parked for their tenant's turn (fair dispatch) are waiting too.
    const waitingIn = async (queue: 'scan' | 'backup' | 'update') => {
      const c = await queueCounts(app.queues[queue], app.redis);
      return c.waiting + c.delayed;
    };

    it('enqueues every job of the list, across queues, and answers in order', async () => {
      const before = { scan: await waitingIn('scan'), backup: await waitingIn('backup') };
      const jobs = [
        { type: 'scan:quick', data: { serverId: 'web-1' } },
        { type: 'backup:manual', data: { serverId: 'web-1' }, options: { priority: 4 } },
        ...Array.from({ length: 248 }, () => ({ type: 'scan:full', data: { serverId: 'scan-only' } })),
      ];
      const res = await bulk(jobs);
      expect(res.statusCode).toBe(202);
      const { data } = res.json();
      expect(data.count).toBe(250);
      expect(data.jobs[0]).toMatchObject({ queue: 'scan', type: 'scan:quick', state: 'waiting' });
      expect(data.jobs[1]).toMatchObject({ queue: 'backup', type: 'backup:manual', state: 'waiting' });
      expect(new Set(data.jobs.map((j: { jobId: string }) => j.jobId)).size).toBe(250);
      expect(await waitingIn('scan')).toBe(before.scan + 249);
      expect(await waitingIn('backup')).toBe(before.backup + 1);
      // Each job reads and lists like one enqueued alone.
      const backup = (await app.inject({ url: `/api/jobs/${data.jobs[1].jobId}`, headers: acme })).json().data;
      expect(backup).toMatchObject({ tenant: 'acme', state: 'waiting', data: { serverId: 'web-1', backup_type: 'full' } });
      const listed = (await app.inject({ url: '/api/jobs?type=backup:manual&limit=100', headers: acme })).json().data.jobs;
      expect(listed.map((j: { id: string }) => j.id)).toContain(data.jobs[1].jobId);
    });

    it('refuses the whole list when any item is bad, naming each bad item', async () => {
      const before = await waitingIn('scan');
      const res = await bulk([
        { type: 'scan:quick', data: { serverId: 'web-1' } },
        { type: 'scan:quick', data: {} },
        { type: 'scan:quick', data: { serverId: 'web-1' } },
        { type: 'update:server', data: { serverId: 'scan-only' } },
        { type: 'scan:full', data: { serverId: 'globex-db' } },
        { type: 'reboot', data: {} },
      ]);
      expect(res.statusCode).toBe(400);
      const { error } = res.json();
      expect(error.code).toBe('BULK_INVALID');
      expect(error.message).toMatch(/of 6 jobs are invalid, so none was enqueued/);
      // Every bad item at once: the schema's complaints (1, 5) and the inventory's (3, 4).
      expect(error.details.map((d: { index: number }) => d.index)).toEqual([1, 3, 4, 5]);
      expect(error.details.map((d: { code: string }) => d.code)).toEqual(['VALIDATION_ERROR', 'KIND_NOT_DECLARED', 'UNKNOWN_SERVER', 'VALIDATION_ERROR']);
      expect(error.details.find((d: { index: number }) => d.index === 1).message).toMatch(/jobs\[1\]\.data\.serverId/);
      expect(await waitingIn('scan')).toBe(before);
      // Once the schema passes, the inventory checks name their items the same way.
      const second = (await bulk([
        { type: 'scan:quick', data: { serverId: 'web-1' } },
        { type: 'update:server', data: { serverId: 'scan-only' } },
        { type: 'scan:full', data: { serverId: 'globex-db' } },
      ])).json().error;
      expect(second.code).toBe('BULK_INVALID');
      expect(second.details).toEqual([
        { index: 1, code: 'KIND_NOT_DECLARED', message: expect.stringMatching(/^jobs\[1\]\.data\.serverId: server "scan-only" declares no "update"/) },
        { index: 2, code: 'UNKNOWN_SERVER', message: expect.stringMatching(/^jobs\[2\]\.data\.serverId: there is no server "globex-db"/) },
      ]);
      expect(await waitingIn('scan')).toBe(before);
    });

    it('refuses an empty list, more than 1000 jobs, a missing list, and a read-only token', async () => {
      const empty = await bulk([]);
      expect(empty.statusCode).toBe(400);
      expect(empty.json().error).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/body\.jobs/) });
      const tooMany = await bulk(Array.from({ length: 1001 }, () => ({ type: 'scan:quick', data: { serverId: 'web-1' } })));
      expect(tooMany.statusCode).toBe(400);
      expect(tooMany.json().error.message).toMatch(/body\.jobs.*1000/);
      const missing = await app.inject({ method: 'POST', url: '/api/jobs/bulk', headers: acme, payload: {} });
      expect(missing.statusCode).toBe(400);
      const readOnly = await bulk([{ type: 'scan:quick', data: { serverId: 'web-1' } }], auth({ tenant: 'acme', scope: 'jobs:read' }));
      expect(readOnly.statusCode).toBe(403);
    });
  });

  describe('GET /api/jobs/:id', () => {
    it('shows the status body of the contract', async () => {
      const { jobId } = (await submit({ type: 'scan:full', data: { serverId: 'web-1' } })).json().data;
      const res = await app.inject({ url: `/api/jobs/${jobId}`, headers: acme });
      expect(res.statusCode).toBe(200);
      const job = res.json().data;
      expect(Object.keys(job).sort()).toEqual(
        ['id', 'queue', 'type', 'tenant', 'state', 'progress', 'attempts', 'maxAttempts', 'data', 'result', 'failedReason', 'createdAt', 'processedAt', 'finishedAt'].sort(),
      );
      expect(job).toMatchObject({ id: jobId, queue: 'scan', type: 'scan:full', tenant: 'acme', state: 'waiting', progress: 0, attempts: 0, maxAttempts: 3, result: null, failedReason: null, processedAt: null });
      expect(Date.parse(job.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    });

    it('answers 404 for unknown and malformed ids alike', async () => {
      for (const id of ['scan_AAAAAAAAAAAAAAAAAAAAAA', '42', 'backup_x']) {
        const res = await app.inject({ url: `/api/jobs/${id}`, headers: acme });
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('JOB_NOT_FOUND');
      }
    });
  });

  describe('tenant isolation', () => {
    it('answers another tenant\'s job exactly like a missing one, on every route', async () => {
      const { jobId } = (await submit({ type: 'scan:quick', data: { serverId: 'web-1' } })).json().data;
      const fake = 'scan_AAAAAAAAAAAAAAAAAAAAAB';
      for (const [method, suffix] of [['GET', ''], ['DELETE', ''], ['POST', '/retry']] as const) {
        const theirs = await app.inject({ method, url: `/api/jobs/${jobId}${suffix}`, headers: globex });
        const none = await app.inject({ method, url: `/api/jobs/${fake}${suffix}`, headers: globex });
        expect(theirs.statusCode).toBe(404);
        expect(theirs.json().error).toEqual({ ...none.json().error, message: none.json().error.message.replace(fake, jobId) });
      }
      // The job is untouched and still the owner's.
      expect((await app.inject({ url: `/api/jobs/${jobId}`, headers: acme })).json().data.state).toBe('waiting');
      // Admin sees every tenant.
      expect((await app.inject({ url: `/api/jobs/${jobId}`, headers: auth(ADMIN) })).statusCode).toBe(200);
    });

    it('lists only the caller\'s jobs; admin lists all', async () => {
      await submit({ type: 'scan:quick', data: { serverId: 'globex-db' } }, globex);
      const acmeJobs = (await app.inject({ url: '/api/jobs?limit=100', headers: acme })).json().data.jobs;
      const globexJobs = (await app.inject({ url: '/api/jobs?limit=100', headers: globex })).json().data.jobs;
      const all = (await app.inject({ url: '/api/jobs?limit=100', headers: auth(ADMIN) })).json().data.jobs;
      expect(acmeJobs.length).toBeGreaterThan(0);
      expect(acmeJobs.every((j: { tenant: string }) => j.tenant === 'acme')).toBe(true);
      expect(globexJobs.map((j: { tenant: string }) => j.tenant)).toEqual(['globex']);
      expect(all.length).toBe(acmeJobs.length + globexJobs.length);
    });

    it('shows each tenant only its own servers, without commands', async () => {
      const list = (await app.inject({ url: '/api/servers', headers: acme })).json().data.servers;
      expect(list.map((s: { id: string }) => s.id)).toEqual(['scan-only', 'web-1']);
      expect(JSON.stringify(list)).not.toContain('command');
      const theirs = await app.inject({ url: '/api/servers/globex-db', headers: acme });
      const none = await app.inject({ url: '/api/servers/no-such', headers: acme });
      expect(theirs.statusCode).toBe(404);
      expect(theirs.json().error.code).toBe(none.json().error.code);
      const post = await app.inject({ method: 'POST', url: '/api/servers/globex-db/scan', headers: acme });
      expect(post.statusCode).toBe(404);
    });
  });

  describe('GET /api/jobs (listing)', () => {
    let app2: FastifyInstance;
    const t = auth({ tenant: 'lister' });
    const ids: string[] = [];
    beforeAll(async () => {
      app2 = await makeApp({ env: { WORKERS: 'off' }, servers: [{ id: 'l-1', tenant: 'lister', host: '127.0.0.1', scan: { ports: [1] }, update: { command: ['true'] } }] });
      for (let i = 0; i < 25; i++) {
        const type = i % 5 === 0 ? 'update:server' : 'scan:quick';
        const res = await app2.inject({ method: 'POST', url: '/api/jobs', headers: t, payload: { type, data: { serverId: 'l-1' } } });
        ids.push(res.json().data.jobId);
        // Jobs of one millisecond list in id order, not in the order they were sent: keep them a millisecond apart.
        await new Promise((r) => setTimeout(r, 2));
      }
    });
    afterAll(() => app2.close());

    it('pages newest first with a cursor, without gaps or repeats', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const url: string = `/api/jobs?limit=10${cursor ? `&cursor=${cursor}` : ''}`;
        const res = await app2.inject({ url, headers: t });
        expect(res.statusCode).toBe(200);
        const page = res.json().data;
        expect(page.jobs.length).toBeLessThanOrEqual(10);
        seen.push(...page.jobs.map((j: { id: string }) => j.id));
        cursor = page.nextCursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(seen).toEqual([...ids].reverse());
      expect(pages).toBe(3);
    });

    it('keeps its place when jobs are added between pages', async () => {
      const first = (await app2.inject({ url: '/api/jobs?limit=5', headers: t })).json().data;
      await app2.inject({ method: 'POST', url: '/api/jobs', headers: t, payload: { type: 'scan:quick', data: { serverId: 'l-1' } } });
      const second = (await app2.inject({ url: `/api/jobs?limit=5&cursor=${first.nextCursor}`, headers: t })).json().data;
      expect(second.jobs.map((j: { id: string }) => j.id)).toEqual([...ids].reverse().slice(5, 10));
    });

    it('filters by queue, type and state', async () => {
      const updates = (await app2.inject({ url: '/api/jobs?queue=update&limit=100', headers: t })).json().data.jobs;
      expect(updates).toHaveLength(5);
      const byType = (await app2.inject({ url: '/api/jobs?type=update:server&limit=100', headers: t })).json().data.jobs;
      expect(byType.map((j: { id: string }) => j.id)).toEqual(updates.map((j: { id: string }) => j.id));
      const failed = (await app2.inject({ url: '/api/jobs?state=failed', headers: t })).json().data;
      expect(failed).toEqual({ jobs: [], nextCursor: null });
      const waiting = (await app2.inject({ url: '/api/jobs?state=waiting&limit=100', headers: t })).json().data.jobs;
      expect(waiting.length).toBe(26);
    });

    it('enforces the limit bound and rejects bad query values', async () => {
      for (const [query, field] of [['limit=0', 'limit'], ['limit=101', 'limit'], ['limit=abc', 'limit'], ['state=paused', 'state'], ['queue=email', 'queue'], ['offset=20', 'offset']]) {
        const res = await app2.inject({ url: `/api/jobs?${query}`, headers: t });
        expect(res.statusCode, query).toBe(400);
        expect(res.json().error.message).toContain(`querystring`);
        expect(res.json().error.message).toContain(field);
      }
      const badCursor = await app2.inject({ url: '/api/jobs?cursor=not-a-cursor', headers: t });
      expect(badCursor.statusCode).toBe(400);
      expect(badCursor.json().error.code).toBe('INVALID_CURSOR');
      const defaults = (await app2.inject({ url: '/api/jobs', headers: t })).json().data;
      expect(defaults.jobs).toHaveLength(20);
    });
  });

  describe('DELETE and retry', () => {
    it('removes a waiting job and forgets it', async () => {
      const { jobId } = (await submit({ type: 'scan:quick', data: { serverId: 'web-1' } })).json().data;
      const res = await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}`, headers: acme });
      expect(res.statusCode).toBe(200);
      expect(res.json().data).toEqual({ jobId, removed: true });
      expect((await app.inject({ url: `/api/jobs/${jobId}`, headers: acme })).statusCode).toBe(404);
      const list = (await app.inject({ url: '/api/jobs?limit=100', headers: acme })).json().data.jobs;
      expect(list.map((j: { id: string }) => j.id)).not.toContain(jobId);
      expect((await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}`, headers: acme })).statusCode).toBe(404);
    });

    it('refuses to retry a job that has not failed (409)', async () => {
      const { jobId } = (await submit({ type: 'scan:quick', data: { serverId: 'web-1' } })).json().data;
      // A client that always sends Content-Type: application/json, with no body.
      const res = await app.inject({ method: 'POST', url: `/api/jobs/${jobId}/retry`, headers: { ...acme, 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toMatchObject({ code: 'JOB_NOT_FAILED' });
      expect(res.json().error.message).toContain('waiting');
    });

    it('needs jobs:write to remove or retry', async () => {
      const { jobId } = (await submit({ type: 'scan:quick', data: { serverId: 'web-1' } })).json().data;
      const reader = auth({ tenant: 'acme', scope: 'jobs:read' });
      expect((await app.inject({ method: 'DELETE', url: `/api/jobs/${jobId}`, headers: reader })).statusCode).toBe(403);
      expect((await app.inject({ method: 'POST', url: `/api/jobs/${jobId}/retry`, headers: reader })).statusCode).toBe(403);
    });
  });

  describe('server shortcuts', () => {
    it('enqueue backup, scan and update with the contract\'s answers', async () => {
      const backup = await app.inject({ method: 'POST', url: '/api/servers/web-1/backup', headers: acme, payload: { backup_type: 'full', compression: false } });
      expect(backup.statusCode).toBe(202);
      expect(backup.json().data).toMatchObject({ status: 'pending' });
      expect(backup.json().data.backupId).toMatch(/^[0-9a-f-]{36}$/);
      const job = (await app.inject({ url: backup.headers.location as string, headers: acme })).json().data;
      expect(job).toMatchObject({ type: 'backup:manual', data: { serverId: 'web-1', compression: false } });

      const scan = await app.inject({ method: 'POST', url: '/api/servers/web-1/scan', headers: acme, payload: { scan_type: 'quick' } });
      expect(scan.statusCode).toBe(202);
      expect((await app.inject({ url: scan.headers.location as string, headers: acme })).json().data.type).toBe('scan:quick');

      const update = await app.inject({ method: 'POST', url: '/api/servers/web-1/update', headers: acme });
      expect(update.statusCode).toBe(202);
      expect(update.json().data.updateId).toBeTruthy();
    });

    it('answers 400 for bad bodies and undeclared kinds', async () => {
      const badScan = await app.inject({ method: 'POST', url: '/api/servers/web-1/scan', headers: acme, payload: { scan_type: 'deep' } });
      expect(badScan.statusCode).toBe(400);
      expect(badScan.json().error.message).toContain('body.scan_type');
      const extra = await app.inject({ method: 'POST', url: '/api/servers/web-1/update', headers: acme, payload: { command: ['rm', '-rf', '/'] } });
      expect(extra.statusCode).toBe(400);
      expect(extra.json().error.message).toContain('command');
      const undeclared = await app.inject({ method: 'POST', url: '/api/servers/scan-only/backup', headers: acme });
      expect(undeclared.statusCode).toBe(400);
      expect(undeclared.json().error.code).toBe('KIND_NOT_DECLARED');
    });
  });

  describe('stats and metrics', () => {
    it('counts jobs per queue and in total', async () => {
      const res = await app.inject({ url: '/api/jobs/stats/all', headers: auth({ tenant: 'acme', scope: 'metrics:read' }) });
      expect(res.statusCode).toBe(200);
      const { backup, scan, update, total } = res.json().data;
      expect(scan.waiting).toBeGreaterThan(0);
      expect(backup.delayed).toBeGreaterThanOrEqual(1);
      expect(total.total).toBe(backup.total + scan.total + update.total);
      expect(total.waiting).toBe(backup.waiting + scan.waiting + update.waiting);
    });

    it('reports per-queue counts and health in the contract\'s shape', async () => {
      const res = await app.inject({ url: '/api/metrics/queues', headers: auth({ scope: 'metrics:read' }) });
      expect(res.statusCode).toBe(200);
      const data = res.json().data;
      expect(Object.keys(data).sort()).toEqual(['backup', 'health', 'scan', 'update']);
      expect(Object.keys(data.scan).sort()).toEqual(['active', 'cancelled', 'completed', 'delayed', 'failed', 'total', 'waiting']);
      // This app runs no workers: the scans waiting here have nobody to run them.
      expect(data.health).toMatchObject({ status: 'unhealthy', message: expect.stringContaining('scan: ') });
      expect(data.health.queues.scan).toMatchObject({ status: 'critical', maxConcurrency: 0, activePercent: null, waiting: data.scan.waiting });
      expect(data.health.queues.scan.reasons).toEqual([`scan: ${data.scan.waiting} jobs waiting and no worker process serves the queue (critical)`]);
    });

    it('describes the process and all of its Redis (on a Cluster: every master, summed)', async () => {
      const res = await app.inject({ url: '/api/metrics/system', headers: auth({ scope: 'admin' }) });
      expect(res.statusCode).toBe(200);
      const { redis } = res.json().data;
      expect(redis).toMatchObject({ status: 'ready', maxmemoryPolicy: 'noeviction' });
      // At least this process's own connections, on each node it is connected to.
      expect(redis.connectedClients).toBeGreaterThanOrEqual(app.config.redisCluster ? 3 : 1);
      expect(redis.usedMemoryBytes).toBeGreaterThan(0);
    });

    it('keeps queue-wide numbers from tokens without metrics:read', async () => {
      expect((await app.inject({ url: '/api/metrics/queues', headers: acme })).statusCode).toBe(403);
      expect((await app.inject({ url: '/api/jobs/stats/all', headers: acme })).statusCode).toBe(403);
    });
  });

  it('answers unknown routes with the envelope', async () => {
    const res = await app.inject({ url: '/api/nothing', headers: acme });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ success: false, error: { code: 'ROUTE_NOT_FOUND' } });
  });

  it('answers what the router refuses (a malformed %-encoding, an over-long path part) with the envelope and x-request-id', async () => {
    for (const [url, status, code] of [
      ['/api/jobs/%E0%A4%A', 400, 'BAD_URL'],
      ['/%zzpi/jobs', 400, 'BAD_URL'],
      [`/api/jobs/${'a'.repeat(600)}`, 414, 'URI_TOO_LONG'],
    ] as const) {
      const res = await app.inject({ url, headers: { ...acme, 'x-request-id': 'trace-me-1' } });
      expect(res.statusCode, url).toBe(status);
      expect(res.headers['x-request-id']).toBe('trace-me-1');
      expect(res.json()).toMatchObject({ success: false, error: { code }, requestId: 'trace-me-1' });
    }
  });
});
