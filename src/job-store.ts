import { randomBytes } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { BadRequestError, ConflictError, NotFoundError } from './errors.js';
import { GET_JOB_LUA, LIST_JOBS_LUA } from './job-scripts.js';
import {
  DEFAULT_JOB_OPTIONS,
  INDEX_RETENTION_MS,
  QUEUES,
  queueOfJobId,
  queueOfType,
  type JobEnvelope,
  type JobOptions,
  type JobState,
  type JobType,
  type QueueName,
} from './job-types.js';

/** A job as the API shows it. */
export type JobView = {
  id: string;
  queue: QueueName;
  type: JobType;
  tenant: string;
  state: JobState;
  progress: number;
  attempts: number;
  maxAttempts: number;
  data: unknown;
  result: unknown;
  failedReason: string | null;
  createdAt: string;
  processedAt: string | null;
  finishedAt: string | null;
};

export type ListFilter = {
  /** Only this tenant's jobs; `undefined` lists every tenant (admin). */
  tenant: string | undefined;
  queue?: QueueName;
  state?: JobState;
  type?: JobType;
  limit: number;
  cursor?: string;
};

export type RemoveOutcome = { status: 'removed' } | { status: 'active' } | { status: 'missing' };
export type RetryOutcome = { status: 'retried'; state: JobState } | { status: 'not-failed'; state: JobState } | { status: 'missing' };

/** How many index entries one list call may look at before it answers with a cursor. */
const LIST_SCAN_BUDGET = 2000;

type RawJob = (string | null)[];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiGetJob(qprefix: string, id: string): Promise<RawJob | null>;
    jobsapiListJobs(
      index: string,
      prefix: string,
      maxScore: string,
      cursorId: string,
      limit: number,
      state: string,
      type: string,
      queue: string,
      budget: number,
    ): Promise<[string | null, string | null, RawJob[]]>;
  }
}

function newJobId(queue: QueueName): string {
  return `${queue}_${randomBytes(16).toString('base64url')}`;
}

function iso(ms: string | null | undefined): string | null {
  if (!ms) return null;
  const n = Number(ms);
  return Number.isFinite(n) && n > 0 ? new Date(n).toISOString() : null;
}

function parseJson(text: string | null | undefined): unknown {
  if (text === null || text === undefined || text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function encodeCursor(score: string, id: string): string {
  return Buffer.from(JSON.stringify([score, id])).toString('base64url');
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && /^\d{1,16}$/.test(String(v[0])) && typeof v[1] === 'string' && queueOfJobId(v[1])) {
      return [String(v[0]), v[1]];
    }
  } catch {
    // fall through
  }
  throw new BadRequestError('querystring.cursor: not a cursor this API returned; use nextCursor from the previous page', 'INVALID_CURSOR');
}

/**
 * Jobs as the API sees them: opaque ids, tenant ownership, a creation-time
 * index per tenant for cursor listing, and state reads that do not grow with
 * the queue's depth.
 */
export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly queues: Readonly<Record<QueueName, Queue>>,
  ) {
    redis.defineCommand('jobsapiGetJob', { numberOfKeys: 1, lua: GET_JOB_LUA });
    redis.defineCommand('jobsapiListJobs', { numberOfKeys: 1, lua: LIST_JOBS_LUA });
  }

  private queuePrefix(queue: QueueName): string {
    return `${this.prefix}:${QUEUES[queue].redisName}:`;
  }

  indexKey(tenant: string | undefined): string {
    return tenant === undefined ? `${this.prefix}:jobsapi:idx:all` : `${this.prefix}:jobsapi:idx:tenant:${tenant}`;
  }

  private get tenantsKey(): string {
    return `${this.prefix}:jobsapi:tenants`;
  }

  onIndexError?: (err: Error, jobId: string) => void;

  /** Enqueue one job; the index write is pipelined with the add on the same connection. */
  async add(type: JobType, envelope: JobEnvelope, options: JobOptions = {}): Promise<{ jobId: string; queue: QueueName; state: JobState }> {
    const queue = queueOfType(type);
    const jobId = newJobId(queue);
    const now = Date.now();
    const delay = options.delay ?? 0;
    const indexed = this.redis
      .multi()
      .zadd(this.indexKey(undefined), now, jobId)
      .zadd(this.indexKey(envelope.tenant), now, jobId)
      .sadd(this.tenantsKey, envelope.tenant)
      .exec();
    const added = this.queues[queue].add(type, envelope, {
      jobId,
      timestamp: now,
      priority: options.priority ?? QUEUES[queue].defaultPriority,
      attempts: options.attempts ?? DEFAULT_JOB_OPTIONS.attempts,
      ...(delay > 0 ? { delay } : {}),
    });
    const [addResult, indexResult] = await Promise.allSettled([added, indexed]);
    if (addResult.status === 'rejected') throw addResult.reason;
    // The job is accepted even if its index entry was not written: its status
    // still reads by id; only listings would miss it.
    if (indexResult.status === 'rejected') this.onIndexError?.(indexResult.reason as Error, jobId);
    return { jobId, queue, state: delay > 0 ? 'delayed' : 'waiting' };
  }

  private toView(id: string, queue: QueueName, raw: RawJob): JobView {
    const [state, name, data, opts, progress, returnvalue, failedReason, timestamp, processedOn, finishedOn, atm, ats] = raw;
    const envelope = (parseJson(data) ?? {}) as Partial<JobEnvelope>;
    const options = (parseJson(opts) ?? {}) as { attempts?: number };
    const p = Number(parseJson(progress) ?? 0);
    return {
      id,
      queue,
      type: name as JobType,
      tenant: envelope.tenant ?? 'default',
      state: state as JobState,
      progress: Number.isFinite(p) ? p : 0,
      attempts: Math.max(Number(ats ?? 0), Number(atm ?? 0)),
      maxAttempts: options.attempts ?? 1,
      data: envelope.input ?? null,
      result: state === 'completed' ? parseJson(returnvalue) : null,
      failedReason: failedReason ?? null,
      createdAt: iso(timestamp) ?? new Date(0).toISOString(),
      processedAt: iso(processedOn),
      finishedAt: iso(finishedOn),
    };
  }

  /** The job, when it exists and `tenant` may see it (`undefined`: admin). One round trip. */
  async get(id: string, tenant: string | undefined): Promise<JobView | undefined> {
    const queue = queueOfJobId(id);
    if (!queue) return undefined;
    const raw = await this.redis.jobsapiGetJob(this.queuePrefix(queue), id);
    if (!raw) return undefined;
    const view = this.toView(id, queue, raw);
    if (tenant !== undefined && view.tenant !== tenant) return undefined;
    return view;
  }

  async mustGet(id: string, tenant: string | undefined): Promise<JobView> {
    const job = await this.get(id, tenant);
    if (!job) throw new NotFoundError(`Job "${id}"`, 'JOB_NOT_FOUND');
    return job;
  }

  async list(filter: ListFilter): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    const [score, id] = filter.cursor ? decodeCursor(filter.cursor) : ['+inf', ''];
    const [nextScore, nextId, rows] = await this.redis.jobsapiListJobs(
      this.indexKey(filter.tenant),
      this.prefix,
      score,
      id,
      filter.limit,
      filter.state ?? '',
      filter.type ?? '',
      filter.queue ?? '',
      LIST_SCAN_BUDGET,
    );
    const jobs = rows.map((row) => {
      const [jobId, ...rest] = row as [string, ...RawJob];
      return this.toView(jobId, queueOfJobId(jobId)!, rest);
    });
    return { jobs, nextCursor: nextScore && nextId ? encodeCursor(nextScore, nextId) : null };
  }

  async remove(id: string, tenant: string | undefined): Promise<RemoveOutcome> {
    const job = await this.get(id, tenant);
    if (!job) return { status: 'missing' };
    if (job.state === 'active') return { status: 'active' };
    const removed = await this.queues[job.queue].remove(id);
    if (!removed) {
      // Removal refuses a job that holds a lock: it became active in between.
      const again = await this.get(id, tenant);
      return again ? { status: 'active' } : { status: 'missing' };
    }
    await this.redis.multi().zrem(this.indexKey(undefined), id).zrem(this.indexKey(job.tenant), id).exec();
    return { status: 'removed' };
  }

  async retry(id: string, tenant: string | undefined): Promise<RetryOutcome> {
    const view = await this.get(id, tenant);
    if (!view) return { status: 'missing' };
    if (view.state !== 'failed') return { status: 'not-failed', state: view.state };
    const job = await Job.fromId(this.queues[view.queue], id);
    if (!job) return { status: 'missing' };
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch (err) {
      const now = await this.get(id, tenant);
      if (!now) return { status: 'missing' };
      if (now.state !== 'failed') return { status: 'not-failed', state: now.state };
      throw err;
    }
    const after = await this.get(id, tenant);
    return { status: 'retried', state: after?.state ?? 'waiting' };
  }

  /** Drop index entries older than the longest retention; the jobs they named are gone. */
  async sweepIndexes(now = Date.now()): Promise<number> {
    const cutoff = now - INDEX_RETENTION_MS;
    const tenants = await this.redis.smembers(this.tenantsKey);
    const keys = [this.indexKey(undefined), ...tenants.map((t) => this.indexKey(t))];
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.zremrangebyscore(key, '-inf', cutoff);
    const results = (await pipeline.exec()) ?? [];
    return results.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
  }
}

export function conflictForRemove(id: string): ConflictError {
  return new ConflictError(`Job "${id}" is running; wait for it to finish (or fail) before removing it.`, 'JOB_ACTIVE');
}
