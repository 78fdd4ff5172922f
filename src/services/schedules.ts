import type { Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { BadRequestError, NotFoundError } from '../errors.js';
import type { JobService } from './jobs.js';
import { QUEUES, QUEUE_NAMES, queueOfType, SCHEDULED_RECORD, type JobData, type JobEnvelope, type JobOptions, type JobType, type QueueName } from '../jobs/index.js';
import { visibleTenant, type Principal } from '../tenant.js';

export const scheduleIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit')
  .describe('your name for the schedule, unique per tenant');

/** How many upcoming run times a schedule shows. */
const NEXT_RUNS = 5;

export type ScheduleView = {
  id: string;
  tenant: string;
  queue: QueueName;
  type: JobType;
  data: unknown;
  cron: string;
  tz: string | null;
  options: { priority?: number; attempts?: number };
  runs: number;
  next: string[];
};

/** The BullMQ job scheduler id of a tenant's schedule: queue, tenant and name, none of which holds a `~`. */
function schedulerId(queue: QueueName, tenant: string, id: string): string {
  return `${queue}~${tenant}~${id}`;
}

function parseSchedulerId(key: string): { queue: QueueName; tenant: string; id: string } | undefined {
  const [queue, tenant, id, ...rest] = key.split('~');
  if (rest.length || !queue || !tenant || !id || !(QUEUE_NAMES as readonly string[]).includes(queue)) return undefined;
  return { queue: queue as QueueName, tenant, id };
}

/** The next run times of a cron pattern, or the 400 that says what is wrong with it. */
export function nextRuns(cron: string, tz: string | undefined, count = NEXT_RUNS, from = new Date()): Date[] {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new BadRequestError(
      `cron: "${cron}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; write 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)`,
      'INVALID_CRON',
    );
  }
  if (tz !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
    } catch {
      throw new BadRequestError(`tz: "${tz}" is not a time zone; use an IANA name such as "Europe/Paris" or "UTC"`, 'INVALID_CRON');
    }
  }
  try {
    const expr = CronExpressionParser.parse(cron, { tz, currentDate: from });
    return Array.from({ length: count }, () => expr.next().toDate());
  } catch (err) {
    throw new BadRequestError(`cron: "${cron}" is not a valid cron expression: ${(err as Error).message}`, 'INVALID_CRON');
  }
}

/**
 * Cron schedules, each a BullMQ job scheduler that adds a job of the
 * schedule's type and data at every tick. Schedules belong to a tenant and
 * check the inventory like any enqueue; each run is a job of its own, with
 * an id `repeat:<queue>~<tenant>~<id>:<time>`.
 */
export class Schedules {
  constructor(
    private readonly queues: Record<QueueName, Queue>,
    private readonly jobs: JobService,
  ) {}

  async upsert(
    principal: Principal,
    input: { id: string; type: JobType; data: JobData; cron: string; tz?: string; options?: Pick<JobOptions, 'priority' | 'attempts'> },
  ): Promise<{ created: boolean; schedule: ScheduleView }> {
    const next = nextRuns(input.cron, input.tz);
    const server = this.jobs.checkTarget(principal, input.type, input.data);
    const queue = queueOfType(input.type);
    const key = schedulerId(queue, server.tenant, input.id);
    // A schedule name is unique per tenant across queues: replacing one of another type moves it.
    const existing = await this.find(server.tenant, input.id);
    if (existing && existing.queue !== queue) await this.queues[existing.queue].removeJobScheduler(schedulerId(existing.queue, existing.tenant, existing.id));
    const envelope: JobEnvelope = { tenant: server.tenant, requestedBy: principal.sub, recordId: SCHEDULED_RECORD, input: input.data };
    await this.queues[queue].upsertJobScheduler(
      key,
      { pattern: input.cron, ...(input.tz ? { tz: input.tz } : {}) },
      {
        name: input.type,
        data: envelope,
        opts: {
          priority: input.options?.priority ?? QUEUES[queue].defaultPriority,
          attempts: input.options?.attempts ?? 3,
        },
      },
    );
    const schedule = (await this.find(server.tenant, input.id)) ?? this.fallbackView(queue, server.tenant, input, next);
    return { created: existing === undefined, schedule };
  }

  private fallbackView(queue: QueueName, tenant: string, input: { id: string; type: JobType; data: JobData; cron: string; tz?: string; options?: JobOptions }, next: Date[]): ScheduleView {
    return { id: input.id, tenant, queue, type: input.type, data: input.data, cron: input.cron, tz: input.tz ?? null, options: input.options ?? {}, runs: 0, next: next.map((d) => d.toISOString()) };
  }

  private async all(queue: QueueName): Promise<ScheduleView[]> {
    const list = await this.queues[queue].getJobSchedulers(0, -1, true);
    const out: ScheduleView[] = [];
    for (const s of list) {
      const parsed = parseSchedulerId(s.key);
      if (!parsed || !s.pattern) continue;
      const template = s.template?.data as JobEnvelope | undefined;
      const opts = (s.template?.opts ?? {}) as { priority?: number; attempts?: number };
      let next: string[] = [];
      try {
        next = nextRuns(s.pattern, s.tz ?? undefined).map((d) => d.toISOString());
      } catch {
        // A pattern BullMQ accepted but this parser does not: shown without run times.
      }
      out.push({
        id: parsed.id,
        tenant: parsed.tenant,
        queue,
        type: s.name as JobType,
        data: template?.input ?? null,
        cron: s.pattern,
        tz: s.tz ?? null,
        options: { priority: opts.priority, attempts: opts.attempts },
        runs: s.iterationCount ?? 0,
        next,
      });
    }
    return out;
  }

  private async find(tenant: string, id: string): Promise<ScheduleView | undefined> {
    for (const queue of QUEUE_NAMES) {
      const s = (await this.all(queue)).find((v) => v.tenant === tenant && v.id === id);
      if (s) return s;
    }
    return undefined;
  }

  /** The schedules `principal` may see (admin: every tenant's), by id. */
  async list(principal: Principal): Promise<ScheduleView[]> {
    const tenant = visibleTenant(principal);
    const all = (await Promise.all(QUEUE_NAMES.map((q) => this.all(q)))).flat();
    return all.filter((s) => tenant === undefined || s.tenant === tenant).sort((a, b) => a.tenant.localeCompare(b.tenant) || a.id.localeCompare(b.id));
  }

  /** A schedule of the caller's tenant; admin may name another tenant's with `tenant`. */
  async get(principal: Principal, id: string, tenant?: string): Promise<ScheduleView> {
    const owner = principal.isAdmin && tenant ? tenant : principal.tenant;
    const s = await this.find(owner, id);
    if (!s) throw new NotFoundError(`Schedule "${id}"`, 'SCHEDULE_NOT_FOUND');
    return s;
  }

  async remove(principal: Principal, id: string, tenant?: string): Promise<void> {
    const s = await this.get(principal, id, tenant);
    await this.queues[s.queue].removeJobScheduler(schedulerId(s.queue, s.tenant, s.id));
  }
}
