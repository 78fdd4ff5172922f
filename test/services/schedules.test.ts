import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextRuns } from '../../src/services/schedules.js';
import { ADMIN, auth, makeApp, waitForJob } from '../helpers.js';

const OPS = auth({ tenant: 'ops' });
const OTHER = auth({ tenant: 'globex' });

describe('cron schedules', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await makeApp({
      // A schedule that fires every second below (the default refuses more often than every 60 s), and a small cap.
      env: { SCHEDULE_MIN_INTERVAL_SEC: '1', TENANT_MAX_SCHEDULES: '5' },
      servers: [
        { id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 }, backup: { paths: ['config/sample/www'] } },
        { id: 'db', tenant: 'globex', host: '127.0.0.1', scan: { ports: [1] } },
      ],
    });
  });
  afterAll(() => app.close());

  const post = (payload: object, headers = OPS) => app.inject({ method: 'POST', url: '/api/schedules', headers, payload });

  it('refuses a bad cron pattern or time zone with a 400 that says why', async () => {
    const cases: Array<[object, RegExp]> = [
      [{ cron: '61 * * * *' }, /cron: "61 \* \* \* \*" is not a valid cron expression: .*61/],
      [{ cron: '* * *' }, /has 3 fields; write 5 .* or 6/],
      [{ cron: '0 2 * * *', tz: 'Mars/Olympus' }, /tz: "Mars\/Olympus" is not a time zone/],
    ];
    for (const [patch, message] of cases) {
      const res = await post({ id: 'bad', type: 'scan:quick', data: { serverId: 'web' }, ...patch });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'INVALID_CRON', message: expect.stringMatching(message) });
    }
    const foreign = await post({ id: 'bad', type: 'scan:quick', data: { serverId: 'db' }, cron: '0 2 * * *' });
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json().error.code).toBe('UNKNOWN_SERVER');
    const restore = await post({ id: 'bad', type: 'backup:restore', data: { serverId: 'web', backupId: '3b241101-e2bb-4255-8caf-4136c566a962' }, cron: '0 2 * * *' });
    expect(restore.statusCode).toBe(400);
    expect((await app.inject({ url: '/api/schedules', headers: OPS })).json().data).toEqual([]);
  });

  it('a nightly backup schedule shows its next run times; replacing it answers 200', async () => {
    const res = await post({ id: 'nightly', type: 'backup:scheduled', data: { serverId: 'web' }, cron: '0 2 * * *', tz: 'Europe/Paris', options: { priority: 4 } });
    expect(res.statusCode).toBe(201);
    const s = res.json().data;
    expect(s).toMatchObject({ id: 'nightly', tenant: 'ops', queue: 'backup', type: 'backup:scheduled', cron: '0 2 * * *', tz: 'Europe/Paris', options: { priority: 4 } });
    expect(s.data).toMatchObject({ serverId: 'web', backup_type: 'full' });
    expect(s.next).toHaveLength(5);
    for (const t of s.next) {
      const d = new Date(t);
      expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(d)).toBe('02:00');
    }
    const again = await post({ id: 'nightly', type: 'backup:scheduled', data: { serverId: 'web', backup_type: 'incremental' }, cron: '30 3 * * *' });
    expect(again.statusCode).toBe(200);
    const got = (await app.inject({ url: '/api/schedules/nightly', headers: OPS })).json().data;
    expect(got).toMatchObject({ cron: '30 3 * * *', tz: null, data: { backup_type: 'incremental' } });
    // Other tenants neither see it nor reach it; admin sees it with the tenant named.
    expect((await app.inject({ url: '/api/schedules', headers: OTHER })).json().data).toEqual([]);
    expect((await app.inject({ url: '/api/schedules/nightly', headers: OTHER })).statusCode).toBe(404);
    expect((await app.inject({ url: '/api/schedules/nightly?tenant=ops', headers: auth(ADMIN) })).json().data.id).toBe('nightly');
    expect((await app.inject({ method: 'DELETE', url: '/api/schedules/nightly', headers: OPS })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/schedules/nightly', headers: OPS })).statusCode).toBe(404);
  });

  it('a schedule fires: each run is a job of its own that can be read and listed; deleting it stops it', async () => {
    const res = await post({ id: 'every-second', type: 'scan:quick', data: { serverId: 'web' }, cron: '* * * * * *' });
    expect(res.statusCode).toBe(201);
    // Wait for two runs to finish.
    const deadline = Date.now() + 15_000;
    let runs: Array<{ id: string; state: string; type: string; tenant: string }> = [];
    while (Date.now() < deadline) {
      runs = (await app.inject({ url: '/api/jobs?type=scan:quick&limit=50', headers: OPS })).json().data.jobs;
      if (runs.filter((j) => j.state === 'completed').length >= 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const done = runs.filter((j) => j.state === 'completed');
    expect(done.length).toBeGreaterThanOrEqual(2);
    for (const j of done) {
      expect(j.id).toMatch(/^repeat:scan~ops~every-second:\d+$/);
      expect(j.tenant).toBe('ops');
      const one = await app.inject({ url: `/api/jobs/${encodeURIComponent(j.id)}`, headers: OPS });
      expect(one.json().data).toMatchObject({ id: j.id, state: 'completed', result: { scanType: 'quick' } });
      expect((await app.inject({ url: `/api/jobs/${encodeURIComponent(j.id)}`, headers: OTHER })).statusCode).toBe(404);
    }
    // Each run has its own record.
    const scanIds = new Set(done.map((j) => (j as unknown as { result: { scanId: string } }).result?.scanId));
    expect(scanIds.size).toBe(done.length);
    expect((await app.inject({ url: '/api/schedules/every-second', headers: OPS })).json().data.runs).toBeGreaterThanOrEqual(2);

    expect((await app.inject({ method: 'DELETE', url: '/api/schedules/every-second', headers: OPS })).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    const settled = (await app.inject({ url: '/api/jobs?type=scan:quick&limit=100', headers: OPS })).json().data.jobs.length;
    await new Promise((r) => setTimeout(r, 2000));
    const later = (await app.inject({ url: '/api/jobs?type=scan:quick&limit=100', headers: OPS })).json().data.jobs.length;
    expect(later).toBe(settled);
    await waitForJob(app, done[0]!.id);
  });
  it('a tenant has at most TENANT_MAX_SCHEDULES schedules: one more is a 429; replacing one is fine; other tenants are unaffected', async () => {
    const globex = auth({ tenant: 'globex' });
    const mine = (await app.inject({ url: '/api/schedules', headers: globex })).json().data as unknown[];
    for (let i = mine.length; i < 5; i++) expect((await post({ id: `cap-${i}`, type: 'scan:quick', data: { serverId: 'db' }, cron: '0 2 * * *' }, globex)).statusCode).toBe(201);
    const over = await post({ id: 'cap-over', type: 'scan:quick', data: { serverId: 'db' }, cron: '0 2 * * *' }, globex);
    expect(over.statusCode).toBe(429);
    expect(over.json()).toMatchObject({ success: false, error: { code: 'TOO_MANY_SCHEDULES', message: expect.stringContaining('TENANT_MAX_SCHEDULES=5') } });
    expect((await post({ id: 'cap-4', type: 'scan:quick', data: { serverId: 'db' }, cron: '30 3 * * *' }, globex)).statusCode).toBe(200);
    // Another tenant's list shows its own only.
    const theirs = (await app.inject({ url: '/api/schedules', headers: OPS })).json().data as Array<{ tenant: string }>;
    expect(theirs.every((s) => s.tenant === 'ops')).toBe(true);
    for (let i = 0; i < 5; i++) await app.inject({ method: 'DELETE', url: `/api/schedules/cap-${i}`, headers: globex });
  });

  it('refuses a pattern that runs more often than SCHEDULE_MIN_INTERVAL_SEC with 400 SCHEDULE_TOO_FREQUENT', async () => {
    const strict = await makeApp({ env: { WORKERS: 'off' }, servers: [{ id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1] } }] });
    try {
      // The last one runs twice 30 s apart once an hour: the shortest gap counts, not the usual one.
      for (const cron of ['* * * * * *', '*/30 * * * * *', '0,30 0 * * * *']) {
        const res = await strict.inject({ method: 'POST', url: '/api/schedules', headers: OPS, payload: { id: 'often', type: 'scan:quick', data: { serverId: 'web' }, cron } });
        expect(res.statusCode, cron).toBe(400);
        expect(res.json().error).toMatchObject({ code: 'SCHEDULE_TOO_FREQUENT', message: expect.stringContaining('every 60 s') });
      }
      const everyMinute = await strict.inject({ method: 'POST', url: '/api/schedules', headers: OPS, payload: { id: 'often', type: 'scan:quick', data: { serverId: 'web' }, cron: '* * * * *' } });
      expect(everyMinute.statusCode).toBe(201);
    } finally {
      await strict.close();
    }
  });
});

describe('nextRuns (the run times a schedule shows)', () => {
  const from = new Date('2026-03-28T12:00:00Z');

  it('counts forward from the given time, in the schedule\'s time zone', () => {
    expect(nextRuns('0 2 * * *', 'UTC', 2, from).map((d) => d.toISOString())).toEqual(['2026-03-29T02:00:00.000Z', '2026-03-30T02:00:00.000Z']);
    // Noon in Paris is 11:00 UTC on the 28th (UTC+1) and 10:00 UTC on the 29th, once summer time has begun.
    expect(nextRuns('0 12 * * *', 'Europe/Paris', 2, from).map((d) => d.toISOString())).toEqual(['2026-03-29T10:00:00.000Z', '2026-03-30T10:00:00.000Z']);
    expect(nextRuns('0 12 * * *', 'Europe/Paris', 1, new Date('2026-03-28T00:00:00Z'))[0]!.toISOString()).toBe('2026-03-28T11:00:00.000Z');
  });

  it('takes a seconds field as the first of six', () => {
    expect(nextRuns('30 0 12 * * *', 'UTC', 1, from)[0]!.toISOString()).toBe('2026-03-28T12:00:30.000Z');
  });

  it('refuses what is not a pattern with INVALID_CRON and a message that says why', () => {
    const refusal = (cron: string, tz?: string) => {
      try {
        nextRuns(cron, tz, 1, from);
      } catch (err) {
        return { code: (err as { code?: string }).code, message: (err as Error).message };
      }
      throw new Error(`"${cron}" was accepted`);
    };
    expect(refusal('* * *')).toEqual({ code: 'INVALID_CRON', message: expect.stringMatching(/has 3 fields/) });
    expect(refusal('0 25 * * *')).toEqual({ code: 'INVALID_CRON', message: expect.stringMatching(/not a valid cron expression/) });
    expect(refusal('0 2 * * *', 'Nowhere/Town')).toEqual({ code: 'INVALID_CRON', message: expect.stringMatching(/is not a time zone/) });
  });

});
