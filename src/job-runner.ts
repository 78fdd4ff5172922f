import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Config } from './config.js';
import { declaresKind, type Inventory, type Server } from './inventory.js';
import { envelopeSchema, queueOfType, JOB_TYPES, type JobEnvelope, type JobType, type QueueName } from './job-types.js';
import { ProgressReporter } from './progress.js';
import type { RecordStore } from './records.js';

export type WorkerDeps = {
  config: Config;
  inventory: Inventory;
  records: RecordStore;
  logger: Logger;
};

/** What a processor gets besides its job: the verified server and input, progress, a job logger. */
export type JobContext<D> = {
  job: Job<JobEnvelope>;
  type: JobType;
  input: D;
  server: Server;
  recordId: string;
  progress: ProgressReporter;
  log: Logger;
  deps: WorkerDeps;
};

export type Processor<D> = (ctx: JobContext<D>) => Promise<Record<string, unknown>>;

/**
 * The steps every job shares: 10 started, re-parse the data with the schema
 * the route used (an invalid job fails without retries), 20 server verified,
 * then the processor's own work (which ends by storing its record), then 100.
 * Progress is written as the work goes (see ProgressReporter) and never makes
 * it wait; a completed job reads as 100.
 */
export function runJob<S extends z.ZodType>(
  queue: QueueName,
  schemas: Partial<Record<JobType, S>>,
  processor: Processor<z.output<S>>,
  deps: WorkerDeps,
) {
  // One envelope schema per job type, built once: building a zod schema per job costs more than the check.
  const envelopes = new Map(
    Object.entries(schemas)
      .filter(([type]) => (JOB_TYPES as readonly string[]).includes(type) && queueOfType(type as JobType) === queue)
      .map(([type, schema]) => [type, envelopeSchema(schema as S)]),
  );
  return async (job: Job<JobEnvelope>): Promise<Record<string, unknown>> => {
    const log = deps.logger.child({ queue, jobId: job.id, type: job.name, attempt: job.attemptsMade + 1 });
    const progress = new ProgressReporter(
      (v) => job.updateProgress(v),
      (err) => log.debug({ err: err.message }, 'progress not written'),
    );
    progress.milestone(10);

    const type = job.name as JobType;
    const schema = envelopes.get(type);
    if (!schema) throw new UnrecoverableError(`unknown job type "${job.name}" for the ${queue} queue`);
    const parsed = schema.safeParse(job.data);
    if (!parsed.success) {
      progress.finish();
      const issue = parsed.error.issues[0];
      throw new UnrecoverableError(`invalid job data: ${issue?.path.join('.')}: ${issue?.message}`);
    }
    const envelope = parsed.data as JobEnvelope<z.output<S>>;
    const server = deps.inventory.get((envelope.input as { serverId: string }).serverId, envelope.tenant);
    if (!server || !declaresKind(server, queue)) {
      progress.finish();
      throw new UnrecoverableError(`server "${(envelope.input as { serverId: string }).serverId}" is no longer in the inventory with a ${queue} section`);
    }
    progress.milestone(20);

    log.info('job started');
    const started = Date.now();
    try {
      // The processor stores its own record of success; failures are recorded here.
      const result = await processor({ job, type, input: envelope.input, server, recordId: envelope.recordId, progress, log, deps });
      progress.finish(100);
      log.info({ ms: Date.now() - started }, 'job completed');
      return result;
    } catch (err) {
      progress.finish();
      await deps.records.finish(queue, envelope.recordId, 'failed', { error: (err as Error).message }).catch(() => {});
      log.warn({ ms: Date.now() - started, err: (err as Error).message }, 'job attempt failed');
      throw err;
    }
  };
}
