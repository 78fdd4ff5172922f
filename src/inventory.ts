import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { serverIdSchema, type QueueName } from './jobs/index.js';
import { TENANT_PATTERN } from './tenant.js';

const serverSchema = z.strictObject({
  id: serverIdSchema,
  name: z.string().min(1).max(200).optional(),
  tenant: z.string().regex(TENANT_PATTERN, 'must be 1-64 letters, digits, ".", "_" or "-"').default('default'),
  host: z.string().min(1).max(253),
  backup: z
    .strictObject({
      paths: z.array(z.string().min(1)).min(1, 'must list at least one path'),
      exclude: z.array(z.string().min(1)).default([]),
      timeoutSec: z.number().int().min(1).max(86_400).default(21_600).describe('how long a backup or restore of this server may run (default 6 h)'),
    })
    .optional(),
  scan: z
    .strictObject({
      ports: z.array(z.number().int().min(1).max(65535)).min(1, 'must list at least one port'),
      expect: z
        .array(z.number().int().min(1).max(65535))
        .optional()
        .describe('the ports that should be open: a scan reports an expected port closed and an open port not listed here'),
      timeoutMs: z.number().int().min(50).max(60_000).default(2000),
      concurrency: z.number().int().min(1).max(256).default(20),
      timeoutSec: z.number().int().min(1).max(86_400).default(600).describe('how long a whole scan of this server may run (default 10 min); timeoutMs bounds each probe'),
    })
    .optional(),
  update: z
    .strictObject({
      command: z.array(z.string().min(1)).min(1, 'must be an argv array such as ["/usr/bin/apt-get", "-y", "upgrade"]'),
      timeoutSec: z.number().int().min(1).max(86_400).default(900),
      env: z
        .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'a variable name: letters, digits and "_", not starting with a digit'), z.string().max(4096))
        .optional()
        .describe('variables the command gets besides PATH, HOME and LANG; it never gets the API\'s own environment'),
    })
    .optional(),
});

const inventorySchema = z.strictObject({ servers: z.array(serverSchema) });

export type Server = z.output<typeof serverSchema>;

export class InventoryError extends Error {
  override name = 'InventoryError';
}

/** A page of servers, by id; `nextCursor` is null after the last page. */
export type ServerPage = { servers: Server[]; nextCursor: string | null };
/** A page asked for with a cursor this API did not return. */
export type InvalidServerCursor = { status: 'invalid-cursor' };

/** The order every listing of servers follows: by id, compared as code units (ids are ASCII), never by locale. */
function byId(a: Server, b: Server): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The index of the first server of `sorted` whose id comes strictly after `id` (whether or not `id` is there). */
function firstAfter(sorted: readonly Server[], id: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.id <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A listing cursor: the last id of the page, base64url. Opaque to callers. */
export function encodeServerCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

/** The id a cursor points after, or undefined when it is not a cursor this API returned. */
export function decodeServerCursor(cursor: string): string | undefined {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  // Node's base64url decoder skips what it cannot read: only the canonical encoding of an id is a cursor.
  return serverIdSchema.safeParse(id).success && encodeServerCursor(id) === cursor ? id : undefined;
}

/**
 * The servers an operator declared. Lookups are by id and scoped by tenant.
 * An inventory never changes: reading the file again makes a new one, which
 * sorts its listings once, here, so that a page costs what it returns.
 */
export class Inventory {
  private readonly byId: Map<string, Server>;
  /** Every server by id (what the admin lists), and each tenant's. */
  private readonly sorted: readonly Server[];
  private readonly sortedByTenant: ReadonlyMap<string, readonly Server[]>;

  constructor(
    /** In the file's order. */
    readonly servers: readonly Server[],
    /** Relative paths and commands in the file resolve from here. */
    readonly baseDir: string,
  ) {
    this.byId = new Map(servers.map((s) => [s.id, s]));
    this.sorted = [...servers].sort(byId);
    const byTenant = new Map<string, Server[]>();
    for (const s of this.sorted) {
      const list = byTenant.get(s.tenant);
      if (list) list.push(s);
      else byTenant.set(s.tenant, [s]);
    }
    this.sortedByTenant = byTenant;
  }

  /** The server, when it exists and `tenant` may see it (`undefined` tenant: admin, sees all). */
  get(id: string, tenant: string | undefined): Server | undefined {
    const server = this.byId.get(id);
    if (!server || (tenant !== undefined && server.tenant !== tenant)) return undefined;
    return server;
  }

  /** The servers `tenant` may see (`undefined`: admin, all), by id. Kept sorted: nothing is built per call. */
  list(tenant: string | undefined): readonly Server[] {
    return tenant === undefined ? this.sorted : (this.sortedByTenant.get(tenant) ?? []);
  }

  /**
   * A page of `list(tenant)`: at most `limit` servers from the first id strictly after the cursor's (a binary
   * search, then a slice). The cursor's server need not be there any more: one removed or added between two
   * pages moves no other server from one page to another, so a walk neither repeats nor skips one.
   */
  page(tenant: string | undefined, limit: number, cursor?: string): ServerPage | InvalidServerCursor {
    const list = this.list(tenant);
    let start = 0;
    if (cursor) {
      const after = decodeServerCursor(cursor);
      if (after === undefined) return { status: 'invalid-cursor' };
      start = firstAfter(list, after);
    }
    const servers = list.slice(start, start + Math.max(1, Math.floor(limit)));
    const last = servers[servers.length - 1];
    return { servers, nextCursor: last && start + servers.length < list.length ? encodeServerCursor(last.id) : null };
  }

  resolvePath(p: string): string {
    return path.resolve(this.baseDir, p);
  }

  /** argv[0] that looks relative (./x, ../x, dir/x) resolves from the file's folder; a bare name uses PATH. */
  resolveCommand(argv: readonly string[]): string[] {
    const [bin, ...rest] = argv;
    if (bin === undefined) return [];
    return [bin.includes('/') && !path.isAbsolute(bin) ? this.resolvePath(bin) : bin, ...rest];
  }
}

export function declaresKind(server: Server, kind: QueueName): boolean {
  return server[kind] !== undefined;
}

export function parseInventory(raw: unknown, baseDir: string, source = 'inventory'): Inventory {
  const parsed = inventorySchema.safeParse(raw);
  if (!parsed.success) {
    const root = raw as { servers?: Array<{ id?: unknown }> };
    const lines = parsed.error.issues.map((issue) => {
      const [first, index, ...rest] = issue.path;
      let where = issue.path.join('.');
      if (first === 'servers' && typeof index === 'number') {
        const id = root?.servers?.[index]?.id;
        where = `servers[${index}]${typeof id === 'string' ? ` (id "${id}")` : ''}${rest.length ? '.' + rest.join('.') : ''}`;
      }
      return `  ${where || '(file)'}: ${issue.message}`;
    });
    throw new InventoryError(`${source} is invalid:\n${lines.join('\n')}`);
  }
  const seen = new Set<string>();
  parsed.data.servers.forEach((s, i) => {
    if (seen.has(s.id)) throw new InventoryError(`${source} is invalid:\n  servers[${i}] (id "${s.id}").id: duplicate id`);
    seen.add(s.id);
  });
  return new Inventory(parsed.data.servers, baseDir);
}

export function loadInventory(file: string): Inventory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InventoryError(`cannot read the server inventory ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InventoryError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseInventory(raw, path.dirname(file), file);
}
