import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { readWorkers } from '../coordination/worker-registry.js';
import { PRIORITY, QUEUE_NAMES, type JobState, type QueueName } from '../jobs/index.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import type { JobView } from '../store/job-store.js';
import type { Principal } from '../tenant.js';
import type { JobService } from './jobs.js';
import type { TenantAdmin } from './tenant-admin.js';

/** What may hold a job that is not running, in the order an answer lists them. */
export const HOLD_CODES = ['QUEUE_PAUSED', 'NO_WORKER', 'DELAYED', 'RETRY_BACKOFF', 'RATE_LIMITED', 'TENANT_AT_CAP', 'TENANT_THROTTLED', 'SERVER_LOCKED', 'TENANT_TURN', 'WAITING_IN_LINE'] as const;
export type HoldCode = (typeof HOLD_CODES)[number];

/** One thing that holds a job, in a sentence, with its figures (each code carries its own: see the route's schema). */
export type HoldReason = {
  code: HoldCode;
  message: string;
  queue?: QueueName;
  tenant?: string;
  cap?: number;
  active?: number;
  holders?: string[];
  serverId?: string;
  holder?: string;
  until?: string;
  max?: number;
  durationMs?: number;
  attemptsMade?: number;
  maxAttempts?: number;
  failedReason?: string;
  priority?: number;
  position?: number;
  samePriority?: number;
  ahead?: number;
  tenants?: number;
};

export type JobExplanation = {
  jobId: string;
  queue: QueueName;
  state: JobState;
  /** Not running and not finished: waiting or delayed. */
  held: boolean;
  summary: string;
  attempts: number;
  maxAttempts: number;
  failedReason: string | null;
  reasons: HoldReason[];
};

/**
 * How workers/run-job.ts (`waitAgain`) starts the log line of a job it sends
 * back to `delayed` because its tenant is at its cap or its server's lock is
 * taken: the job looks again 1-2 s later. That wait is not the job's own delay
 * nor a retry, and the line is how the API tells them apart.
 */
export const TURN_WAIT_LINE = '[jobs-api] waiting: ';
/** A turn wait is a second or two; a delayed job due later than this was delayed for another reason. */
const TURN_WAIT_MAX_MS = 5000;
/** Except a wait for a tenant's throttle (queue:throttle-org), which lasts until its window lets the job start: up to a day. */
const THROTTLE_WAIT = / is throttled to \d+ /;
const THROTTLE_WAIT_MAX_MS = 24 * 3600 * 1000 + TURN_WAIT_MAX_MS;
/** BullMQ's delayed score is the due time × 0x1000 plus a counter; a prioritized score is the priority × 2^32 plus a counter. */
const DELAY_SCORE_UNIT = 0x1000;
const PRIORITY_SCORE_UNIT = 2 ** 32;
/** The tenant's jobs named as holding its slots, at most. */
const MAX_HOLDERS = 50;

const HELD_STATES: ReadonlySet<JobState> = new Set(['waiting', 'delayed']);
const PRIORITY_NAMES = new Map<number, string>(Object.entries(PRIORITY).map(([name, n]) => [n, name.toLowerCase()]));

/**
 * "Why isn't my job running?": every reason that holds a job that has not
 * started (or not started again), each with its figures, read from where the
 * workers decide — the queue's pause flag and rate limiter, the worker
 * registry, the job's place in BullMQ's sets, its tenant's slots and its
 * server's lock. Each read touches one hash tag (the job's queue, or the
 * worker registry's), so it runs as it is on Redis Cluster.
 */
export class JobExplainer {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly queues: Record<QueueName, Queue>,
    private readonly jobs: JobService,
    private readonly tenants: TenantAdmin,
    /** QUEUE_RATE_LIMITS: the limiter's `max` is what tells a full window from a running one. */
    private readonly rateLimits: Partial<Record<QueueName, { max: number; duration: number }>> = {},
  ) {
    this.keys = redisKeys(prefix);
  }

  /** The job's explanation, or the same 404 as GET /api/jobs/:id when it does not exist or `principal` may not see it. */
  async explain(principal: Principal, id: string, now = Date.now()): Promise<JobExplanation> {
    const view = await this.jobs.get(principal, id);
    const base = { jobId: view.id, queue: view.queue, state: view.state, attempts: view.attempts, maxAttempts: view.maxAttempts, failedReason: view.failedReason };
    if (!HELD_STATES.has(view.state)) return { ...base, held: false, summary: notHeld(view), reasons: [] };
    const reasons = await this.reasons(view, now);
    return { ...base, held: true, summary: heldSummary(view), reasons };
  }

  private async reasons(view: JobView, now: number): Promise<HoldReason[]> {
    const { id, queue, tenant } = view;
    const q = this.queues[queue];
    const serverId = serverIdOf(view.data);
    const bull = this.keys.bullmq(queue);
    const limit = this.rateLimits[queue];
    // One transaction on the queue's hash tag: where the job is, its tenant's live slots, its last log line, its server's lock.
    const m = this.redis
      .multi()
      .zscore(bull.delayed, id)
      .zscore(bull.prioritized, id)
      .lpos(bull.wait, id, 'RANK', -1)
      .llen(bull.wait)
      .zrangebyscore(this.keys.tenantSlots(queue, tenant), now, '+inf')
      .lindex(bull.jobLog(id), -1)
      .zrank(this.keys.fair(queue).lane(tenant), id)
      .zcard(this.keys.fair(queue).lane(tenant))
      .zcard(this.keys.fair(queue).ring);
    if (serverId) m.get(this.keys.serverLock(queue, serverId));
    const workers = readWorkers(this.redis, this.prefix, Object.fromEntries(QUEUE_NAMES.map((n) => [n, 0])) as Record<QueueName, number>, now);
    const [rows, job, paused, limitTtl, registry, tenantLimit] = await Promise.all([
      m.exec(),
      Job.fromId(q, id),
      q.isPaused(),
      limit ? q.getRateLimitTtl(limit.max) : Promise.resolve(0),
      workers,
      workers.then((w) => this.tenants.limit(tenant, w.processes.length)),
    ]);
    const at = (i: number) => {
      const [err, value] = rows?.[i] ?? [null, null];
      if (err) throw err;
      return value;
    };
    const delayedScore = at(0) as string | null;
    const prioritizedScore = at(1) as string | null;
    const waitIndex = at(2) as number | null;
    const waitLength = Number(at(3) ?? 0);
    const slots = ((at(4) as string[] | null) ?? []).filter((holder) => holder !== id);
    const lastLine = at(5) as string | null;
    const laneRank = at(6) as number | null;
    const laneLength = Number(at(7) ?? 0);
    const tenantsWaiting = Number(at(8) ?? 0);
    const lockHolder = serverId ? (at(9) as string | null) : null;

    const reasons: HoldReason[] = [];
    if (paused) {
      reasons.push({ code: 'QUEUE_PAUSED', queue, message: `the ${queue} queue is paused: workers start none of its jobs until an admin resumes it (POST /api/queues/${queue}/resume)` });
    }
    if (registry.queues[queue].online === 0) {
      reasons.push({ code: 'NO_WORKER', queue, message: `no live worker process serves the ${queue} queue (none has reported in the last 30 s): start one (npm run worker), or an API process with WORKERS=on` });
    }

    const due = delayedScore === null ? undefined : Math.floor(Number(delayedScore) / DELAY_SCORE_UNIT);
    const turnWait =
      due !== undefined && lastLine?.startsWith(TURN_WAIT_LINE) === true && due - now <= (THROTTLE_WAIT.test(lastLine) ? THROTTLE_WAIT_MAX_MS : TURN_WAIT_MAX_MS);
    // Whether the job competes for a start now: waiting, due, or back from a turn that was not free.
    const contending = due === undefined || due <= now || turnWait;
    const turnReasons: HoldReason[] = [];
    if (contending) {
      if (limitTtl > 0 && limit) {
        const until = now + limitTtl;
        turnReasons.push({
          code: 'RATE_LIMITED',
          queue,
          max: limit.max,
          durationMs: limit.duration,
          until: iso(until),
          message: `the ${queue} queue's rate limit (${limit.max} job${limit.max === 1 ? '' : 's'} per ${duration(limit.duration)}) is reached: none of its jobs starts before ${iso(until)} (${fromNow(until, now)})`,
        });
      }
      const cap = tenantLimit.effective[queue];
      if (slots.length >= cap) {
        const holders = slots.slice(0, MAX_HOLDERS);
        turnReasons.push({
          code: 'TENANT_AT_CAP',
          queue,
          tenant,
          cap,
          active: slots.length,
          holders,
          message: `tenant ${tenant} has ${slots.length} of its ${cap} active ${queue} job${cap === 1 ? '' : 's'} running (${holders.join(', ')}${slots.length > holders.length ? ', ...' : ''}): this job starts when one of them ends`,
        });
      }
      const throttle = tenantLimit.throttle;
      const started = throttle?.queues.includes(queue) ? (throttle.started[queue] ?? 0) : 0;
      if (throttle && throttle.queues.includes(queue) && started >= throttle.max) {
        turnReasons.push({
          code: 'TENANT_THROTTLED',
          queue,
          tenant,
          max: throttle.max,
          durationMs: throttle.perMs,
          message: `tenant ${tenant} is throttled to ${throttle.max} ${queue} job start${throttle.max === 1 ? '' : 's'} per ${duration(throttle.perMs)} (queue:throttle-org) and ${started} started in the last ${duration(throttle.perMs)}: this job starts when the window frees one`,
        });
      }
      if (serverId && lockHolder && lockHolder !== id) {
        turnReasons.push({
          code: 'SERVER_LOCKED',
          queue,
          serverId,
          holder: lockHolder,
          message: `job ${lockHolder} holds the ${queue} lock of server ${serverId} (one ${queue} job at a time per server): this job starts when it ends`,
        });
      }
    }

    if (due !== undefined) {
      const delayed = this.delayReason(view, job, due, now, turnWait, turnReasons.length > 0, lastLine);
      if (delayed) reasons.push(delayed);
    }
    reasons.push(...turnReasons);

    if (laneRank !== null) {
      const others = Math.max(0, tenantsWaiting - 1);
      reasons.push({
        code: 'TENANT_TURN',
        queue,
        tenant,
        position: laneRank + 1,
        ahead: laneRank,
        tenants: tenantsWaiting,
        message:
          `it waits for its tenant's turn: it is number ${laneRank + 1} of tenant ${tenant}'s ${laneLength} ${queue} job${laneLength === 1 ? '' : 's'} waiting for a slot; ` +
          `each slot that frees goes to the next tenant in turn${others > 0 ? ` (${others} other tenant${others === 1 ? '' : 's'} ha${others === 1 ? 's' : 've'} jobs waiting)` : ''}, within each tenant's cap`,
      });
    }
    const line = await this.placeInLine(queue, prioritizedScore, waitIndex, waitLength);
    if (line) reasons.push(line);
    return reasons;
  }

  /** Why a job in BullMQ's delayed set is there: its own delay (or schedule), a retry's backoff, or a turn that was not free. */
  private delayReason(view: JobView, job: Job | undefined, due: number, now: number, turnWait: boolean, turnExplained: boolean, lastLine: string | null): HoldReason | undefined {
    const when = due > now ? `${iso(due)} (${fromNow(due, now)})` : `${iso(due)}, ${ago(due, now)}: it starts when a worker next looks`;
    if (turnWait) {
      // The tenant's cap or the server's lock sent it back; when either still holds, that reason says it all.
      if (turnExplained) return undefined;
      const said = lastLine!.slice(TURN_WAIT_LINE.length).replace(/; this job runs when .*$/, '');
      return { code: 'DELAYED', until: iso(due), message: `it was sent back to wait for its turn (${said}) and looks again at ${when}` };
    }
    const attemptsMade = job?.attemptsMade ?? view.attempts;
    const ownDelay = job?.opts.delay ?? 0;
    if (attemptsMade === 0 && ownDelay > 0 && job && due === job.timestamp + ownDelay) {
      const what = view.id.startsWith('repeat:') ? 'it is a scheduled run' : `it was enqueued with a delay of ${duration(ownDelay)}`;
      return { code: 'DELAYED', until: iso(due), message: `${what}: it is due at ${when}` };
    }
    if (attemptsMade > 0) {
      const failedReason = view.failedReason ?? job?.failedReason ?? '';
      return {
        code: 'RETRY_BACKOFF',
        until: iso(due),
        attemptsMade,
        maxAttempts: view.maxAttempts,
        failedReason,
        message: `attempt ${attemptsMade} of ${view.maxAttempts} failed${failedReason ? ` (${oneLine(failedReason)})` : ''}: attempt ${attemptsMade + 1} is due at ${when}`,
      };
    }
    return { code: 'DELAYED', until: iso(due), message: `it is delayed until ${when}` };
  }

  /** Where a waiting job stands: among the jobs of its priority, and how many jobs of the queue start before it. */
  private async placeInLine(queue: QueueName, prioritizedScore: string | null, waitIndex: number | null, waitLength: number): Promise<HoldReason | undefined> {
    if (prioritizedScore !== null) {
      const score = Number(prioritizedScore);
      const priority = Math.floor(score / PRIORITY_SCORE_UNIT);
      const low = priority * PRIORITY_SCORE_UNIT;
      const key = this.keys.bullmq(queue).prioritized;
      const rows = (await this.redis
        .multi()
        .zcount(key, low, `(${prioritizedScore}`)
        .zcount(key, '-inf', `(${prioritizedScore}`)
        .zcount(key, low, low + PRIORITY_SCORE_UNIT - 1)
        .exec()) ?? [];
      const [before, prioritizedBefore, samePriority] = rows.map(([err, n]) => {
        if (err) throw err;
        return Number(n);
      }) as [number, number, number];
      // BullMQ takes the plain waiting list (jobs without a priority) before any prioritized job.
      return inLine(queue, priority, before + 1, samePriority, waitLength + prioritizedBefore);
    }
    if (waitIndex !== null) {
      // Workers take the waiting list from its tail.
      const ahead = Math.max(0, waitLength - 1 - waitIndex);
      return inLine(queue, 0, ahead + 1, waitLength, ahead);
    }
    return undefined;
  }
}

function inLine(queue: QueueName, priority: number, position: number, samePriority: number, ahead: number): HoldReason {
  const named = PRIORITY_NAMES.get(priority);
  const of = priority === 0 ? 'without a priority' : `of priority ${priority}${named ? ` (${named})` : ''}`;
  const before = ahead === 0 ? 'it is next in line' : `${ahead} job${ahead === 1 ? '' : 's'} of the queue start${ahead === 1 ? 's' : ''} before it`;
  return {
    code: 'WAITING_IN_LINE',
    queue,
    priority,
    position,
    samePriority,
    ahead,
    message: `it is number ${position} of the ${samePriority} waiting ${queue} job${samePriority === 1 ? '' : 's'} ${of}: ${before}`,
  };
}

function serverIdOf(data: unknown): string | undefined {
  const id = (data as { serverId?: unknown } | null)?.serverId;
  return typeof id === 'string' ? id : undefined;
}

function heldSummary(view: JobView): string {
  const made = view.attempts > 0 ? ` (${view.attempts} of its ${view.maxAttempts} attempts made)` : '';
  return `it is ${view.state} and not running${made}`;
}

/** The short answer for a job nothing holds: running, or finished. */
function notHeld(view: JobView): string {
  switch (view.state) {
    case 'active':
      return `it is running (attempt ${view.attempts} of ${view.maxAttempts}${view.processedAt ? `, started at ${view.processedAt}` : ''}): nothing holds it`;
    case 'completed':
      return `it completed${view.finishedAt ? ` at ${view.finishedAt}` : ''}: nothing holds it`;
    case 'cancelled':
      return `it was cancelled while it ran${view.finishedAt ? ` (stopped at ${view.finishedAt})` : ''}: nothing holds it; POST /api/jobs/${view.id}/retry runs it again`;
    default:
      return `it failed for good${view.finishedAt ? ` at ${view.finishedAt}` : ''} after ${view.attempts} of ${view.maxAttempts} attempts${view.failedReason ? ` (${oneLine(view.failedReason)})` : ''}: nothing holds it; POST /api/jobs/${view.id}/retry runs it again`;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A failure reason inside a sentence: on one line (an update's reason carries its last lines of output), and not too long. */
function oneLine(text: string, max = 200): string {
  const flat = text.replace(/\s*\n\s*/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

/** 1 s, 2 min, 1 h 30 min: a duration as a person says it. */
function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return ms < 1000 && ms > 0 ? `${ms} ms` : `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return s % 60 ? `${min} min ${s % 60} s` : `${min} min`;
  const h = Math.floor(min / 60);
  return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
}

const fromNow = (at: number, now: number) => `in ${duration(at - now)}`;
const ago = (at: number, now: number) => `${duration(now - at)} ago`;
