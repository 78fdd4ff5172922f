import { z } from 'zod';
import { jobFamily, serverIdSchema } from './common.js';

export const updateDataSchema = z.strictObject({ serverId: serverIdSchema });
export type UpdateData = z.output<typeof updateDataSchema>;

/** What a completed update:server job holds in `result` (any exit code but 0 fails the job). */
export const updateResultSchema = z
  .object({
    updateId: z.string(),
    serverId: z.string(),
    exitCode: z.literal(0),
    durationMs: z.number().int(),
    outputLines: z.number().int().describe('lines the command printed'),
    outputTail: z.array(z.string()).describe('its last 10 lines of output'),
  })
  .describe('A completed update: the command exited 0');
export type UpdateResult = z.output<typeof updateResultSchema>;

export const updateFamily = jobFamily({
  name: 'update',
  queue: 'update',
  types: ['update:server'],
  input: updateDataSchema,
  result: updateResultSchema,
});
