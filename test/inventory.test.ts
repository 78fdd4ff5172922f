import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory, parseInventory } from '../src/inventory.js';
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
});
