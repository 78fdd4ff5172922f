import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, auth, makeApp } from '../helpers.js';

type Page = { servers: Array<{ id: string; tenant: string }>; nextCursor: string | null };

// Two tenants' servers, interleaved and in no order in the file: the listing is by id whatever the file's order.
const ACME = Array.from({ length: 23 }, (_, i) => `acme-${String(i).padStart(2, '0')}`);
const GLOBEX = Array.from({ length: 9 }, (_, i) => `globex-${i}`);
const shuffled = [...ACME, ...GLOBEX].map((id, i) => ({ id, at: (i * 15) % 32 })).sort((a, b) => a.at - b.at).map((s) => s.id);
const serverOf = (id: string) => ({ id, tenant: id.split('-')[0], host: '127.0.0.1', scan: { ports: [1] }, update: { command: ['secret-command'] } });

describe('GET /api/servers: a page at a time, by id', () => {
  let app: FastifyInstance;
  const acme = auth({ tenant: 'acme' });
  const globex = auth({ tenant: 'globex' });
  const admin = auth(ADMIN);

  beforeAll(async () => {
    app = await makeApp({ env: { WORKERS: 'off' }, servers: shuffled.map(serverOf) });
  });
  afterAll(() => app.close());

  async function page(headers: Record<string, string>, query: string, target = app): Promise<Page> {
    const res = await target.inject({ url: `/api/servers${query}`, headers });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().success).toBe(true);
    return res.json().data as Page;
  }

  /** Every page from the first, `limit` at a time: the pages, and the cursor each was asked with. */
  async function walk(headers: Record<string, string>, limit: number): Promise<Page[]> {
    const pages: Page[] = [];
    let cursor: string | null = null;
    do {
      const p = await page(headers, `?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      pages.push(p);
      cursor = p.nextCursor;
      expect(pages.length).toBeLessThan(100);
    } while (cursor);
    return pages;
  }

  it('walks a tenant\'s whole inventory exactly once, in id order, over several pages, and shows no other tenant\'s', async () => {
    const pages = await walk(acme, 5);
    expect(pages.map((p) => p.servers.length)).toEqual([5, 5, 5, 5, 3]);
    for (const p of pages) expect(p.servers.every((s) => s.tenant === 'acme')).toBe(true);
    expect(pages.flatMap((p) => p.servers.map((s) => s.id))).toEqual([...ACME].sort());
    expect(pages.at(-1)!.nextCursor).toBeNull();
    // The commands are never shown.
    expect(JSON.stringify(pages)).not.toContain('secret-command');

    const theirs = await walk(globex, 4);
    expect(theirs.flatMap((p) => p.servers.map((s) => s.id))).toEqual([...GLOBEX].sort());
    for (const p of theirs) expect(p.servers.every((s) => s.tenant === 'globex')).toBe(true);
  });

  it('the admin walks every tenant\'s servers by id; a last page that ends the list exactly has a null cursor', async () => {
    const every = [...ACME, ...GLOBEX].sort();
    const pages = await walk(admin, 8);
    expect(pages.map((p) => p.servers.length)).toEqual([8, 8, 8, 8]);
    expect(pages.flatMap((p) => p.servers.map((s) => s.id))).toEqual(every);
    expect(await page(admin, '?limit=1000')).toMatchObject({ nextCursor: null });
    expect((await page(admin, '?limit=1000')).servers.map((s) => s.id)).toEqual(every);
  });

  it('answers 100 by default, and one tenant\'s cursor does not show another tenant\'s servers', async () => {
    const first = await page(acme, '');
    expect(first.servers.map((s) => s.id)).toEqual([...ACME].sort());
    expect(first.nextCursor).toBeNull();
    const acmeFirst = await page(acme, '?limit=2');
    const globexNext = await page(globex, `?limit=100&cursor=${encodeURIComponent(acmeFirst.nextCursor!)}`);
    expect(globexNext.servers.every((s) => s.tenant === 'globex')).toBe(true);
  });

  it('refuses a limit out of 1..1000, an unknown parameter and a cursor it did not give, with the error envelope', async () => {
    for (const [query, field] of [['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=abc', 'limit'], ['limit=2.5', 'limit'], ['offset=20', 'offset']]) {
      const res = await app.inject({ url: `/api/servers?${query}`, headers: acme });
      expect(res.statusCode, query).toBe(400);
      expect(res.json()).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
      expect(res.json().error.message).toContain('querystring');
      expect(res.json().error.message).toContain(field);
    }
    const jobCursor = Buffer.from(JSON.stringify(['1700000000000', 'scan_x'])).toString('base64url');
    const garbage = ['not a cursor', '!!!', '%00', 'QUNNRS0wMQ', Buffer.from('acme-01').toString('base64url') + '=', Buffer.from('acme-01\n').toString('base64url'), jobCursor, 'x'.repeat(201)];
    for (const cursor of garbage) {
      const res = await app.inject({ url: `/api/servers?cursor=${encodeURIComponent(cursor)}`, headers: acme });
      expect(res.statusCode, cursor).toBe(400);
      const body = res.json();
      expect(body.success).toBe(false);
      expect(body.error.code, cursor).toBe(cursor.length > 200 ? 'VALIDATION_ERROR' : 'INVALID_CURSOR');
      expect(body.error.message).toContain('querystring.cursor');
      expect(typeof body.requestId).toBe('string');
    }
  });

  it('a server removed from the inventory between two pages (an inventory read again) neither breaks the walk nor moves the others', async () => {
    const sorted = [...ACME].sort();
    const first = await page(acme, '?limit=5');
    expect(first.servers.map((s) => s.id)).toEqual(sorted.slice(0, 5));
    // The next inventory lost the server the cursor points after, and one of the next page; another is new.
    const gone = new Set([sorted[4]!, sorted[6]!]);
    const reloaded = await makeApp({ env: { WORKERS: 'off' }, servers: [...shuffled.filter((id) => !gone.has(id)), 'acme-04a'].map(serverOf) });
    try {
      const rest: string[] = [];
      let cursor = first.nextCursor;
      while (cursor) {
        const p = await page(acme, `?limit=5&cursor=${encodeURIComponent(cursor)}`, reloaded);
        rest.push(...p.servers.map((s) => s.id));
        cursor = p.nextCursor;
      }
      // Strictly after the last id of the first page: no repeat, nothing skipped but what is gone.
      expect(rest).toEqual(['acme-04a', ...sorted.slice(5).filter((id) => !gone.has(id))]);
      // A cursor past every server is the end of the list, not an error.
      const past = Buffer.from('zzz').toString('base64url');
      expect(await page(acme, `?cursor=${past}`, reloaded)).toEqual({ servers: [], nextCursor: null });
    } finally {
      await reloaded.close();
    }
  });
});
