import { z } from 'zod';
import { jobFamily, serverIdSchema } from './common.js';

export const backupIdSchema = z.uuid().describe('a backupId from GET /api/servers/{id}/backups');

export const backupDataSchema = z.strictObject({
  serverId: serverIdSchema,
  backup_type: z.enum(['full', 'incremental']).default('full'),
  compression: z.boolean().default(true),
  encryption: z.boolean().default(false),
});
export type BackupData = z.output<typeof backupDataSchema>;

const archiveType = z.enum(['full', 'incremental']).describe('what the archive holds: every file, or the files changed since baseId');
const baseId = z.string().nullable().describe('the backup an incremental one builds on (restore extracts it first)');
const files = z.number().int().describe('files in the archive');
const skipped = z.number().int().describe('unchanged files an incremental backup left out');
const deleted = z.number().int().describe('files of the base backup gone from the source');
const bytes = z.number().int().describe('size of the archive file');
const sha256 = z.string().describe('SHA-256 of the archive file, verified by re-reading it after writing');

/** What an archive holds and how it is stored: the part a job's result and the server's backup list share. */
const archiveFields = {
  type: archiveType,
  baseId,
  compressed: z.boolean(),
  encrypted: z.boolean(),
  files,
  skipped,
  deleted,
  sourceBytes: z.number().int(),
  bytes,
  sha256,
};

/** What a completed backup:manual / backup:scheduled job holds in `result`. */
export const backupResultSchema = z
  .object({
    backupId: z.string(),
    serverId: z.string(),
    ...archiveFields,
    archive: z.string().describe('path of the archive file on the worker: BACKUP_DIR/<serverId>/<backupId>.tar[.gz][.enc]'),
    createdAt: z.string(),
    verified: z.literal(true).describe('the archive was read back and matched its SHA-256 (a backup that does not verify fails)'),
  })
  .describe('A completed backup: the archive written, verified and listed');
export type BackupResult = z.output<typeof backupResultSchema>;

/** A completed backup as GET /api/servers/{id}/backups lists it. */
export const backupListingSchema = z
  .object({
    backupId: z.string(),
    jobId: z.string().describe('the job that wrote it'),
    ...archiveFields,
    createdAt: z.string(),
  })
  .describe('Backup');
export type BackupListing = z.output<typeof backupListingSchema>;

export const backupFamily = jobFamily({
  name: 'backup',
  queue: 'backup',
  types: ['backup:manual', 'backup:scheduled'],
  input: backupDataSchema,
  result: backupResultSchema,
});
