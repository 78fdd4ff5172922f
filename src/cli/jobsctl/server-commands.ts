import { Option, type Command } from 'commander';
import { api } from './api.js';
import { addEnqueueOptions, globalsOf, idempotencyHeaders, jobOptionsOf, type EnqueueOptions } from './args.js';
import { enqueued } from './job-commands.js';
import { out, table } from './output.js';

type ServerView = { id: string; name: string; tenant: string; host: string; kinds: string[] };
type BackupListing = { backupId: string; jobId: string; type: string; baseId: string | null; compressed: boolean; encrypted: boolean; files: number; bytes: number; createdAt: string };

const serverPath = (id: string) => `/api/servers/${encodeURIComponent(id)}`;

/** server:list, server:backup, server:scan, server:update, backup:list, backup:restore: jobs by server, as the inventory declares them. */
export function addServerCommands(program: Command): void {
  const g = globalsOf(program);

  program
    .command('server:list')
    .description('the servers your token may act on, and the kinds of job each declares')
    .action(async () => {
      const r = await api().call<ServerView[]>('GET', '/api/servers');
      out(g(), r, () => table(r.map((s) => ({ ...s, kinds: s.kinds.join(',') })), [['id', 'ID'], ['name', 'NAME'], ['tenant', 'TENANT'], ['host', 'HOST'], ['kinds', 'KINDS']]));
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
