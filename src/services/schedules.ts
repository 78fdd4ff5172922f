import type { JobSchedulerJson, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { AppError, BadRequestError, NotFoundError } from '../errors.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
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

/** The shortest time between two of the next `count` runs of a pattern. */
export function shortestGapMs(runs: readonly Date[]): number {
  let gap = Infinity;
  for (let i = 1; i < runs.length; i++) gap = Math.min(gap, runs[i]!.getTime() - runs[i - 1]!.getTime());
  return gap;
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
 *
 * A tenant's schedules are also listed in a set of their own per queue
 * (keys.ts `tenantSchedules`), so that reading or counting one tenant's
 * schedules never reads, nor computes the next runs of, anyone else's.
 */
export class Schedules {
  private readonly keys: RedisKeys;

  constructor(
    private readonly queues: Record<QueueName, Queue>,
    private readonly jobs: JobService,
    private readonly redis: Redis,
    prefix: string,
    private readonly limits: { maxPerTenant: number; minIntervalSec: number },
  ) {
    this.keys = redisKeys(prefix);
  }

  /**
   * Fill the per-tenant sets from BullMQ's own list of schedulers (schedules
   * made before the sets existed): once per start, not per request.
   */
  async indexExisting(): Promise<void> {
    for (const queue of QUEUE_NAMES) {
      const list = await this.queues[queue].getJobSchedulers(0, -1, true);
      for (const s of list) {
        const parsed = parseSchedulerId(s.key);
        if (parsed) await this.redis.sadd(this.keys.tenantSchedules(queue, parsed.tenant), parsed.id);
      }
    }
  }

  async upsert(
    principal: Principal,
    input: { id: string; type: JobType; data: JobData; cron: string; tz?: string; options?: Pick<JobOptions, 'priority' | 'attempts'> },
  ): Promise<{ created: boolean; schedule: ScheduleView }> {
    const next = nextRuns(input.cron, input.tz, NEXT_RUNS * 2);
    const gap = shortestGapMs(next);
    if (gap < this.limits.minIntervalSec * 1000) {
      throw new BadRequestError(
        `cron: "${input.cron}" runs as often as every ${Math.round(gap / 1000)} s; schedules may run at most every ${this.limits.minIntervalSec} s (SCHEDULE_MIN_INTERVAL_SEC)`,
        'SCHEDULE_TOO_FREQUENT',
      );
    }
    const server = this.jobs.checkTarget(principal, input.type, input.data);
    const queue = queueOfType(input.type);
    const key = schedulerId(queue, server.tenant, input.id);
    // A schedule name is unique per tenant across queues: replacing one of another type moves it.
    const existing = await this.find(server.tenant, input.id);
    if (!existing) {
      const count = await this.count(server.tenant);
      if (count >= this.limits.maxPerTenant) {
        throw new AppError(
          429,
          'TOO_MANY_SCHEDULES',
          `Tenant "${server.tenant}" has ${count} schedules, the most allowed (TENANT_MAX_SCHEDULES=${this.limits.maxPerTenant}); delete one, or replace one by its id.`,
        );
      }
    }
    if (existing && existing.queue !== queue) await this.removeScheduler(existing.queue, existing.tenant, existing.id);
    const envelope: JobEnvelope = { tenant: server.tenant, requestedBy: principal.sub, recordId: SCHEDULED_RECORD, input: input.data };
    await this.redis.sadd(this.keys.tenantSchedules(queue, server.tenant), input.id);
    await this.queues[queue].upsertJobScheduler(
      key,
      { pattern: input.cron, ...(input.tz ? { tz: input.tz } : {}) },
      {
        name: input.type,
        data: envelope,
        opts: {
          priority: input.options?.priority ?? QUEUES[queue].defaultPriority,
          // Attempts not given: the queue's default (JOB_ATTEMPTS), as for any job.
          ...(input.options?.attempts !== undefined ? { attempts: input.options.attempts } : {}),
        },
      },
    );
    const schedule = (await this.find(server.tenant, input.id)) ?? this.fallbackView(queue, server.tenant, input, next.slice(0, NEXT_RUNS));
    return { created: existing === undefined, schedule };
  }

  private fallbackView(queue: QueueName, tenant: string, input: { id: string; type: JobType; data: JobData; cron: string; tz?: string; options?: JobOptions }, next: Date[]): ScheduleView {
    return { id: input.id, tenant, queue, type: input.type, data: input.data, cron: input.cron, tz: input.tz ?? null, options: input.options ?? {}, runs: 0, next: next.map((d) => d.toISOString()) };
  }

  private view(queue: QueueName, tenant: string, id: string, s: JobSchedulerJson): ScheduleView | undefined {
    if (!s.pattern) return undefined;
    const template = s.template?.data as JobEnvelope | undefined;
    const opts = (s.template?.opts ?? {}) as { priority?: number; attempts?: number };
    let next: string[] = [];
    try {
      next = nextRuns(s.pattern, s.tz ?? undefined).map((d) => d.toISOString());
    } catch {
      // A pattern BullMQ accepted but this parser does not: shown without run times.
    }
    return {
      id,
      tenant,
      queue,
      type: s.name as JobType,
      data: template?.input ?? null,
      cron: s.pattern,
      tz: s.tz ?? null,
      options: { priority: opts.priority, attempts: opts.attempts },
      runs: s.iterationCount ?? 0,
      next,
    };
  }

  /** One schedule of one queue, read by its scheduler id (no list of everyone's). */
  private async read(queue: QueueName, tenant: string, id: string): Promise<ScheduleView | undefined> {
    const s = await this.queues[queue].getJobScheduler(schedulerId(queue, tenant, id));
    return s ? this.view(queue, tenant, id, s) : undefined;
  }

  private async find(tenant: string, id: string): Promise<ScheduleView | undefined> {
    const found = await Promise.all(QUEUE_NAMES.map((queue) => this.read(queue, tenant, id)));
    return found.find((s) => s !== undefined);
  }

  /** How many schedules a tenant has (the sets, one per queue). */
  private async count(tenant: string): Promise<number> {
    const counts = await Promise.all(QUEUE_NAMES.map((q) => this.redis.scard(this.keys.tenantSchedules(q, tenant))));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** A tenant's schedules, from its own sets; a name whose scheduler is gone leaves its set. */
  private async ofTenant(tenant: string): Promise<ScheduleView[]> {
    const perQueue = await Promise.all(
      QUEUE_NAMES.map(async (queue) => {
        const ids = await this.redis.smembers(this.keys.tenantSchedules(queue, tenant));
        const views = await Promise.all(ids.map((id) => this.read(queue, tenant, id)));
        const gone = ids.filter((_, i) => views[i] === undefined);
        if (gone.length) await this.redis.srem(this.keys.tenantSchedules(queue, tenant), ...gone);
        return views.filter((v): v is ScheduleView => v !== undefined);
      }),
    );
    return perQueue.flat();
  }

  /** Every tenant's schedules (admin), from BullMQ's list. */
  private async everyone(): Promise<ScheduleView[]> {
    const perQueue = await Promise.all(
      QUEUE_NAMES.map(async (queue) => {
        const list = await this.queues[queue].getJobSchedulers(0, -1, true);
        return list.flatMap((s) => {
          const parsed = parseSchedulerId(s.key);
          const v = parsed ? this.view(queue, parsed.tenant, parsed.id, s) : undefined;
          return v ? [v] : [];
        });
      }),
    );
    return perQueue.flat();
  }

  /** The schedules `principal` may see (admin: every tenant's), by id. */
  async list(principal: Principal): Promise<ScheduleView[]> {
    const tenant = visibleTenant(principal);
    const all = tenant === undefined ? await this.everyone() : await this.ofTenant(tenant);
    return all.sort((a, b) => a.tenant.localeCompare(b.tenant) || a.id.localeCompare(b.id));
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
    await this.removeScheduler(s.queue, s.tenant, s.id);
  }

  private async removeScheduler(queue: QueueName, tenant: string, id: string): Promise<void> {
    await this.queues[queue].removeJobScheduler(schedulerId(queue, tenant, id));
    await this.redis.srem(this.keys.tenantSchedules(queue, tenant), id);
  }
}
