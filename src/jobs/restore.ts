import { z } from 'zod';
import { backupIdSchema } from './backup.js';
import { jobFamily, serverIdSchema } from './common.js';

export const restoreDataSchema = z.strictObject({
  serverId: serverIdSchema,
  backupId: backupIdSchema,
});
export type RestoreData = z.output<typeof restoreDataSchema>;

/** What a completed backup:restore job holds in `result`. */
export const restoreResultSchema = z
  .object({
    restoreId: z.string(),
    serverId: z.string(),
    backupId: z.string().describe('the backup restored'),
    chain: z.array(z.string()).describe('the backups extracted, oldest first: a full backup, then the incremental ones up to backupId'),
    directory: z.string().describe('where the files are: DATA_DIR/restores/<serverId>-<restoreId>/'),
    files: z.number().int().describe('files in the directory'),
    bytes: z.number().int().describe('their total size'),
  })
  .describe('A completed restore: the directory that holds the source as the backup saw it');
export type RestoreResult = z.output<typeof restoreResultSchema>;

/** A completed restore, as `GET /api/servers/{id}/restores` lists it. */
export const restoreListingSchema = restoreResultSchema
  .extend({
    jobId: z.string().describe('the backup:restore job that made it'),
    host: z.string().describe('the machine the directory is on (the host name of the worker process that restored it)'),
    createdAt: z.string(),
  })
  .describe('Restore');
export type RestoreListing = z.output<typeof restoreListingSchema>;

/** Restores run on the backup queue: a restore and a backup of one server never overlap. */
export const restoreFamily = jobFamily({
  name: 'restore',
  queue: 'backup',
  types: ['backup:restore'],
  input: restoreDataSchema,
  result: restoreResultSchema,
  schedulable: false,
});
