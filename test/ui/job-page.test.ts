import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endOpenStreams } from '../../src/http/job-stream.js';
import { redisKeys } from '../../src/redis/keys.js';
import { auth, makeApp, tmpDir, token, waitForJob } from '../helpers.js';
import { chromiumPath } from '../browser.js';

const node = process.execPath;
/**
 * An update that prints ten numbered lines with progress, one every 200 ms, but waits after the third until the
 * file its argument names exists: the test sees the page live mid-job however slow the machine is.
 */
const GATED = `const fs = require('fs'); let i = 0; const t = setInterval(() => { if (i === 3 && !fs.existsSync(process.argv[1])) return; i += 1; console.log('line ' + i); console.log('PROGRESS ' + i * 10); if (i === 10) clearInterval(t); }, 200)`;

describe('the live page of a job (/ui/jobs/{id}) and its stream tickets', () => {
  let app: FastifyInstance;
  let url: string;
  let browser: Browser;
  const H = auth({ tenant: 'ops' });
  const gate = path.join(tmpDir('job-page'), 'go');

  const submit = async (serverId: string): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: `/api/servers/${serverId}/update`, headers: H, payload: { options: { attempts: 1 } } });
    expect(res.statusCode).toBe(202);
    return res.json().data.jobId as string;
  };
  const text = (page: Page, id: string) => page.getByTestId(id).textContent();

  beforeAll(async () => {
    app = await makeApp({
      servers: [
        { id: 'slow', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', GATED, gate], timeoutSec: 60 } },
        { id: 'broken', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', "console.log('trying'); console.error('E: mirror down'); process.exit(3)"] } },
      ],
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
  }, 60_000);
  afterAll(async () => {
    writeFileSync(gate, ''); // a failed test must not leave the gated job running
    await browser?.close();
    await app.close();
  });

  it('a ticket opens that one job\'s event stream, for 60 s, and nothing else', async () => {
    const id = await submit('broken');
    const other = await submit('broken');
    await waitForJob(app, id);
    const issued = await app.inject({ method: 'POST', url: `/api/jobs/${id}/stream-ticket`, headers: H });
    expect(issued.statusCode).toBe(200);
    const { ticket, url: streamUrl, expiresAt } = issued.json().data;
    expect(streamUrl).toBe(`/api/jobs/${id}/events?ticket=${ticket}`);
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(55_000);

    // No Authorization header: the ticket is enough, for this job.
    const stream = await fetch(`${url}${streamUrl}`);
    expect([stream.status, stream.headers.get('content-type')]).toEqual([200, 'text/event-stream; charset=utf-8']);
    expect(await stream.text()).toContain('event: failed');
    // Redis holds its hash, not the ticket, and lets it expire.
    const stored = await app.redis.keys(`${redisKeys(app.config.queuePrefix).streamTicket('*')}`);
    expect(stored.some((k) => k.includes(ticket))).toBe(false);
    expect(await app.redis.pttl(stored[0]!)).toBeGreaterThan(50_000);

    for (const [path, headers, status, code] of [
      [`/api/jobs/${other}/events?ticket=${ticket}`, {}, 401, 'TICKET_INVALID'], // another job
      [`/api/jobs/${id}/events?ticket=${'x'.repeat(32)}`, {}, 401, 'TICKET_INVALID'], // unknown
      [`/api/jobs/${id}`, { authorization: `Bearer ${ticket}` }, 401, 'TOKEN_INVALID'], // not a token
      [`/api/jobs/${id}?ticket=${ticket}`, {}, 401, 'TOKEN_MISSING'], // only the events route reads it
    ] as const) {
      const res = await app.inject({ url: path, headers });
      expect([res.statusCode, res.json().error.code], path).toEqual([status, code]);
    }
    // Asking for one takes the right to read the job.
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${id}/stream-ticket`, headers: auth({ tenant: 'other' }) })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${id}/stream-ticket` })).statusCode).toBe(401);
  });

  it('shows a job\'s state, progress and log live; takes the token from the fragment and drops it from the address bar', async () => {
    const id = await submit('slow');
    const page = await (await browser.newContext()).newPage();
    const csp = (await page.goto(`${url}/ui/jobs/${id}#token=${token({ tenant: 'ops' })}`))!.headers()['content-security-policy'];
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.url()).toBe(`${url}/ui/jobs/${id}`);
    // Live: a running state and a partial log before the end.
    await page.getByTestId('state').filter({ hasText: 'active' }).waitFor({ timeout: 15_000 });
    await page.getByTestId('log').filter({ hasText: 'line 3' }).waitFor({ timeout: 15_000 });
    const midway = Number(await text(page, 'progress'));
    expect(midway > 0 && midway < 100, `progress ${midway}`).toBe(true);
    // The server ends every open stream (as a restarting API process does): the page carries on from its Last-Event-ID.
    endOpenStreams(app);
    writeFileSync(gate, '');
    await page.getByTestId('state').filter({ hasText: 'completed' }).waitFor({ timeout: 20_000 });
    expect(await text(page, 'progress')).toBe('100');
    const log = (await text(page, 'log'))!.split('\n').filter((l) => l.startsWith('line '));
    expect(log).toEqual(Array.from({ length: 10 }, (_, i) => `line ${i + 1}`));
    expect(await page.evaluate(() => sessionStorage.getItem('jobs-api-token'))).toBeTruthy();
    await page.context().close();
  });

  it('asks for a token in a paste box when the URL has none, and says when one is refused; shows why a job failed', async () => {
    const id = await submit('broken');
    await waitForJob(app, id);
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${url}/ui/jobs/${id}`);
    await page.getByTestId('token-form').waitFor({ state: 'visible' });
    await page.locator('#token').fill('not-a-token');
    await page.getByRole('button', { name: 'Watch' }).click();
    await page.getByTestId('error').filter({ hasText: 'not valid' }).waitFor();
    await page.locator('#token').fill(token({ tenant: 'ops' }));
    await page.getByRole('button', { name: 'Watch' }).click();
    await page.getByTestId('state').filter({ hasText: 'failed' }).waitFor({ timeout: 15_000 });
    expect(await text(page, 'result')).toContain('exited with code 3');
    expect(await text(page, 'log')).toContain('E: mirror down');
    expect(await page.getByTestId('token-form').isHidden()).toBe(true);
    await page.context().close();
  });
});
