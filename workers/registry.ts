import type { JobInput, JobResult, JobType } from '../src/jobs/index.js';
import type { Processor } from './run-job.js';
import { processBackup } from './backup.js';
import { processRestore } from './restore.js';
import { processScan } from './scan.js';
import { processUpdate } from './update.js';

/** A processor for every job type of the contract, taking that type's input and returning its family's result. */
export type ProcessorRegistry = { readonly [T in JobType]: Processor<JobInput<T>, JobResult<T>> };

/** Job type → the processor that does its work. A job type without one does not compile. */
export const PROCESSORS: ProcessorRegistry = {
  'backup:manual': processBackup,
  'backup:scheduled': processBackup,
  'backup:restore': processRestore,
  'scan:full': processScan,
  'scan:quick': processScan,
  'update:server': processUpdate,
};
