import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeServerCursor, encodeServerCursor, loadInventory, parseInventory } from '../src/inventory.js';
import { inventoryOf } from './helpers.js';

describe('the server inventory', () => {
  it('loads the shipped config/servers.json, resolving relative paths from its folder', () => {
    const inv = loadInventory(path.resolve('config/servers.json'));
    const local = inv.get('localhost', 'default')!;
    expect(local.backup?.paths).toEqual(['sample/www']);
    expect(inv.resolvePath('sample/www')).toBe(path.resolve('config/sample/www'));
    expect(inv.resolveCommand(local.update!.command)[0]).toBe(path.resolve('config/scripts/update-localhost.sh'));
    expect(inv.resolveCommand(['apt-get', '-y'])).toEqual(['apt-get', '-y']);
  });

  const cases: Array<[string, unknown, string]> = [
    ['a bad id', { servers: [{ id: 'Web_1', host: 'a' }] }, 'servers[0] (id "Web_1").id'],
    ['a missing host', { servers: [{ id: 'a' }] }, 'servers[0] (id "a").host'],
    ['a command given as a string', { servers: [{ id: 'a', host: 'h', update: { command: 'apt-get upgrade' } }] }, 'servers[0] (id "a").update.command'],
    ['an unknown field', { servers: [{ id: 'a', host: 'h', backups: {} }] }, 'servers[0] (id "a")'],
    ['a duplicate id', { servers: [{ id: 'a', host: 'h' }, { id: 'a', host: 'i' }] }, 'servers[1] (id "a").id: duplicate id'],
    ['no servers array', { hosts: [] }, 'servers'],
  ];
  for (const [what, raw, where] of cases) {
    it(`names the entry and field of ${what}`, () => {
      expect(() => parseInventory(raw, '/', 'servers.json')).toThrow(where);
    });
  }

  it('defaults the tenant and hides servers from other tenants', () => {
    const inv = inventoryOf([{ id: 'a', host: 'h' }, { id: 'b', host: 'h', tenant: 'acme' }]);
    expect(inv.get('a', 'default')?.tenant).toBe('default');
    expect(inv.get('b', 'default')).toBeUndefined();
    expect(inv.get('b', undefined)?.id).toBe('b');
    expect(inv.list('acme').map((s) => s.id)).toEqual(['b']);
  });

  it('lists by id (code units, not locale) for each tenant and for the admin, sorted once when loaded', () => {
    const inv = inventoryOf(['b-2', 'a', 'b-10', 'b', '0', 'a-1', 'ab'].map((id) => ({ id, host: 'h', tenant: id.startsWith('b') ? 'acme' : 'default' })));
    expect(inv.list(undefined).map((s) => s.id)).toEqual(['0', 'a', 'a-1', 'ab', 'b', 'b-10', 'b-2']);
    expect(inv.list('acme').map((s) => s.id)).toEqual(['b', 'b-10', 'b-2']);
    expect(inv.list('nobody')).toEqual([]);
    // The same arrays each call: nothing is filtered or sorted per request.
    expect(inv.list('acme')).toBe(inv.list('acme'));
    // The file's order is kept where it matters (the workers' view).
    expect(inv.servers.map((s) => s.id)[0]).toBe('b-2');
  });

  it('pages from strictly after the cursor\'s id, which need not be there any more', () => {
    const ids = Array.from({ length: 50 }, (_, i) => `s-${String(i * 2).padStart(3, '0')}`);
    const inv = inventoryOf([...ids].reverse().map((id) => ({ id, host: 'h' })));
    const page = (limit: number, cursor?: string) => {
      const p = inv.page(undefined, limit, cursor);
      if ('status' in p) throw new Error(`refused ${cursor}`);
      return { ids: p.servers.map((s) => s.id), next: p.nextCursor };
    };
    // Every page size walks every server once, in order.
    for (const limit of [1, 3, 7, 49, 50, 51]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const p = page(limit, cursor);
        seen.push(...p.ids);
        cursor = p.next ?? undefined;
      } while (cursor);
      expect(seen, `limit ${limit}`).toEqual(ids);
    }
    // A cursor of an id that is not (or no longer) in the list: the first id after it.
    expect(page(2, encodeServerCursor('s-013')).ids).toEqual(['s-014', 's-016']);
    expect(page(2, encodeServerCursor('0')).ids).toEqual(['s-000', 's-002']);
    expect(page(2, encodeServerCursor('s-098'))).toEqual({ ids: [], next: null });
    expect(page(2, encodeServerCursor('z'))).toEqual({ ids: [], next: null });
    expect(page(2, encodeServerCursor('s-094'))).toEqual({ ids: ['s-096', 's-098'], next: null });
    // Only a cursor this API gives is one.
    for (const bad of ['not a cursor', encodeServerCursor('Upper'), encodeServerCursor('s-001') + '=', 'czAwMQ==']) {
      expect(inv.page(undefined, 2, bad), bad).toEqual({ status: 'invalid-cursor' });
    }
    expect(decodeServerCursor(encodeServerCursor('s-001'))).toBe('s-001');
  });
});
