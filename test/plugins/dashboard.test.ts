import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, waitForJob } from '../helpers.js';
import { chromiumPath } from '../browser.js';

const ADMIN_LOGIN = { username: 'ops-admin', password: 'correct horse battery' };
const VIEWER_LOGIN = { username: 'ops-viewer', password: 'look but do not touch' };

describe('the dashboard (bull-board) at /admin/queues, in a real browser', () => {
  let app: FastifyInstance;
  let url: string;
  let browser: Browser;
  let jobId: string;

  beforeAll(async () => {
    app = await makeApp({
      env: { ADMIN_USER: ADMIN_LOGIN.username, ADMIN_PASSWORD: ADMIN_LOGIN.password, VIEWER_USER: VIEWER_LOGIN.username, VIEWER_PASSWORD: VIEWER_LOGIN.password },
      servers: [{ id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }],
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    jobId = (await app.inject({ method: 'POST', url: '/api/servers/web/scan', headers: auth({ tenant: 'ops' }), payload: { scan_type: 'quick' } })).json().data.jobId;
    await waitForJob(app, jobId);
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await app.close();
  });

  it('asks a browser to log in; a wrong password is refused', async () => {
    const anonymous = await fetch(`${url}/admin/queues`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm="Jobs API dashboard"/);
    const wrong = await fetch(`${url}/admin/queues`, { headers: { authorization: 'Basic ' + Buffer.from('ops-admin:nope').toString('base64') } });
    expect(wrong.status).toBe(401);
  });

  // The dashboard addresses a queue by its name in Redis (`{scan}`, a Cluster hash tag).
  const SCAN = encodeURIComponent('{scan}');

  it('the admin logs in and sees the three queues and a job in them', async () => {
    const context = await browser.newContext({ httpCredentials: ADMIN_LOGIN });
    const page = await context.newPage();
    await page.goto(`${url}/admin/queues`);
    for (const q of ['backup', 'scan', 'update']) await page.getByText(q, { exact: true }).first().waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.title()).toContain('Jobs API');
    await page.goto(`${url}/admin/queues/queue/${SCAN}?status=completed`);
    await page.getByText(jobId).first().waitFor({ state: 'visible', timeout: 15_000 });
    expect(await page.content()).toContain(jobId);
    await context.close();
  }, 60_000);

  it('the viewer may look but not act; the admin may act', async () => {
    const basic = (l: { username: string; password: string }) => ({ authorization: 'Basic ' + Buffer.from(`${l.username}:${l.password}`).toString('base64') });
    const viewerPage = await fetch(`${url}/admin/queues/api/queues`, { headers: basic(VIEWER_LOGIN) });
    expect(viewerPage.status).toBe(200);
    const viewerPause = await fetch(`${url}/admin/queues/api/queues/${SCAN}/pause`, { method: 'PUT', headers: basic(VIEWER_LOGIN) });
    expect(viewerPause.status).toBe(403);
    expect(await app.queues.scan.isPaused()).toBe(false);
    const adminPause = await fetch(`${url}/admin/queues/api/queues/${SCAN}/pause`, { method: 'PUT', headers: basic(ADMIN_LOGIN) });
    expect(adminPause.status).toBe(200);
    expect(await app.queues.scan.isPaused()).toBe(true);
    await app.queues.scan.resume();
  });

  it('refuses changes from another site\'s page, may not be framed, and makes an address that keeps failing to log in wait', async () => {
    const basic = (l: { username: string; password: string }) => ({ authorization: 'Basic ' + Buffer.from(`${l.username}:${l.password}`).toString('base64') });
    const pause = (headers: Record<string, string>) => app.inject({ method: 'PUT', url: `/admin/queues/api/queues/${SCAN}/pause`, headers: { ...basic(ADMIN_LOGIN), host: 'jobs.example:3000', ...headers } });
    // A page of another site, with the admin's login the browser sends by itself.
    const others: Array<Record<string, string>> = [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }];
    for (const other of others) {
      const res = await pause(other);
      expect(res.statusCode, JSON.stringify(other)).toBe(403);
      expect(res.json().error.code).toBe('CROSS_SITE_REQUEST');
    }
    expect(await app.queues.scan.isPaused()).toBe(false);
    // Its own page (or a script, which sends no Origin) may.
    expect((await pause({ origin: 'http://jobs.example:3000' })).statusCode).toBe(200);
    await app.queues.scan.resume();

    const page = await app.inject({ url: '/admin/queues', headers: basic(ADMIN_LOGIN) });
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");

    const guess = (ip: string) => app.inject({ url: '/admin/queues', remoteAddress: ip, headers: basic({ username: 'ops-admin', password: 'guess-guess-guess' }) });
    for (let i = 0; i < 10; i++) expect((await guess('10.9.8.7')).statusCode).toBe(401);
    const blocked = await guess('10.9.8.7');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.json().error.code).toBe('TOO_MANY_LOGIN_ATTEMPTS');
    // Even the right password waits; other addresses do not.
    expect((await app.inject({ url: '/admin/queues', remoteAddress: '10.9.8.7', headers: basic(ADMIN_LOGIN) })).statusCode).toBe(429);
    expect((await app.inject({ url: '/admin/queues', remoteAddress: '10.9.8.8', headers: basic(ADMIN_LOGIN) })).statusCode).toBe(200);
  });

  it('is off when no admin login is configured, and stays out of the API document', async () => {
    const plain = await makeApp({ env: { WORKERS: 'off' } });
    expect((await plain.inject({ url: '/admin/queues' })).statusCode).toBe(404);
    await plain.close();
    const doc = (await app.inject({ url: '/docs/json' })).json();
    expect(Object.keys(doc.paths).some((p: string) => p.startsWith('/admin'))).toBe(false);
  });
});
