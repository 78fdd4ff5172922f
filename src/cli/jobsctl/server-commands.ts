import { Option, type Command } from 'commander';
import { api } from './api.js';
import { addEnqueueOptions, globalsOf, idempotencyHeaders, intArg, jobOptionsOf, type EnqueueOptions } from './args.js';
import { enqueued } from './job-commands.js';
import { out, paint, table } from './output.js';

type ServerView = { id: string; name: string; tenant: string; host: string; kinds: string[] };
type ServerPage = { servers: ServerView[]; nextCursor: string | null };
/** The largest page GET /api/servers gives. */
const SERVER_PAGE_MAX = 1000;
type BackupListing = { backupId: string; jobId: string; type: string; baseId: string | null; compressed: boolean; encrypted: boolean; files: number; bytes: number; createdAt: string };

const serverPath = (id: string) => `/api/servers/${encodeURIComponent(id)}`;

/** server:list, server:backup, server:scan, server:update, backup:list, backup:restore: jobs by server, as the inventory declares them. */
export function addServerCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('server:list')
    .description('the servers your token may act on, by id, and the kinds of job each declares (every page; --limit or --cursor: one page)')
    .option('--limit <n>', `one page of this many servers, 1..${SERVER_PAGE_MAX}, with the cursor to the next`, intArg('--limit', 1, SERVER_PAGE_MAX))
    .option('--cursor <cursor>', 'the nextCursor of the previous page')
    .action(async (o: { limit?: number; cursor?: string }) => {
      const client = api();
      const onePage = o.limit !== undefined || o.cursor !== undefined;
      // Every page by default, the largest the API gives, so that the list is what it always was: every server.
      const limit = o.limit ?? (onePage ? undefined : SERVER_PAGE_MAX);
      const get = (cursor: string | undefined) =>
        client.call<ServerPage>('GET', `/api/servers?${new URLSearchParams({ ...(limit ? { limit: String(limit) } : {}), ...(cursor ? { cursor } : {}) })}`);
      let page = await get(o.cursor);
      const servers = [...page.servers];
      while (!onePage && page.nextCursor) {
        page = await get(page.nextCursor);
        servers.push(...page.servers);
      }
      out(g(), onePage ? { servers, nextCursor: page.nextCursor } : servers, () =>
        table(servers.map((s) => ({ ...s, kinds: s.kinds.join(',') })), [['id', 'ID'], ['name', 'NAME'], ['tenant', 'TENANT'], ['host', 'HOST'], ['kinds', 'KINDS']]),
      );
      if (onePage && !g().json && page.nextCursor) process.stderr.write(paint('dim', `more: the same command with --cursor=${page.nextCursor}`) + '\n');
    });

  addEnqueueOptions(
    program
      .command('server:backup')
      .description('back up the server\'s declared paths; prints the job id (--wait: waits for it)')
      .argument('<server>', 'a server id (server:list)')
      .addOption(new Option('--type <type>', 'full, or incremental: the files changed since the last backup').choices(['full', 'incremental']))
      .option('--no-compression', 'a plain .tar instead of .tar.gz')
      .option('--encryption', 'encrypt with the API\'s BACKUP_ENCRYPTION_KEY (it must have one)'),
  ).action(async (server: string, o: EnqueueOptions & { type?: string; compression: boolean; encryption?: boolean }) => {
    const client = api();
    const body = { ...(o.type ? { backup_type: o.type } : {}), compression: o.compression, ...(o.encryption ? { encryption: true } : {}), ...jobOptionsOf(o) };
    const r = await client.call<{ backupId: string; jobId: string; status: string }>('POST', `${serverPath(server)}/backup`, body, idempotencyHeaders(o));
    await enqueued(client, g(), r.jobId, r, o);
  });

  addEnqueueOptions(
    program
      .command('server:scan')
      .description('check the server\'s declared ports; prints the job id (--wait: waits for it)')
      .argument('<server>', 'a server id (server:list)')
      .addOption(new Option('--type <type>', 'full (default): every port, with TLS; quick: the first port').choices(['full', 'quick'])),
  ).action(async (server: string, o: EnqueueOptions & { type?: string }) => {
    const client = api();
    const body = { ...(o.type ? { scan_type: o.type } : {}), ...jobOptionsOf(o) };
    const r = await client.call<{ scanId: string; jobId: string; status: string }>('POST', `${serverPath(server)}/scan`, body, idempotencyHeaders(o));
    await enqueued(client, g(), r.jobId, r, o);
  });

  addEnqueueOptions(
    program
      .command('server:update')
      .description('run the server\'s declared update command; prints the job id (--wait: waits for it)')
      .argument('<server>', 'a server id (server:list)'),
  ).action(async (server: string, o: EnqueueOptions) => {
    const client = api();
    const r = await client.call<{ updateId: string; jobId: string; status: string }>('POST', `${serverPath(server)}/update`, { ...jobOptionsOf(o) }, idempotencyHeaders(o));
    await enqueued(client, g(), r.jobId, r, o);
  });

  program
    .command('backup:list')
    .description('the server\'s completed backups, newest first')
    .argument('<server>', 'a server id (server:list)')
    .action(async (server: string) => {
      const r = await api().call<BackupListing[]>('GET', `${serverPath(server)}/backups`);
      out(g(), r, () =>
        table(
          r.map((b) => ({ ...b, flags: [b.compressed ? 'gzip' : '', b.encrypted ? 'encrypted' : ''].filter(Boolean).join(',') || null })),
          [['backupId', 'BACKUP'], ['type', 'TYPE'], ['baseId', 'BASE'], ['files', 'FILES'], ['bytes', 'BYTES'], ['flags', 'STORED'], ['createdAt', 'CREATED'], ['jobId', 'JOB']],
        ),
      );
    });

  addEnqueueOptions(
    program
      .command('backup:restore')
      .description('restore a backup into a new directory under DATA_DIR/restores/; prints the job id (--wait: waits for it)')
      .argument('<server>', 'a server id (server:list)')
      .argument('<backupId>', 'a backup of that server (backup:list)'),
  ).action(async (server: string, backupId: string, o: EnqueueOptions) => {
    const client = api();
    const r = await client.call<{ restoreId: string; backupId: string; jobId: string; status: string }>(
      'POST',
      `${serverPath(server)}/backups/${encodeURIComponent(backupId)}/restore`,
      { ...jobOptionsOf(o) },
      idempotencyHeaders(o),
    );
    await enqueued(client, g(), r.jobId, r, o);
  });
}
