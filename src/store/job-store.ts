import { randomBytes } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ReplicaConfirmer } from './replication.js';
import { DeadLetterIndex } from './dead-letter-index.js';
import { TurnBatcher } from './turn-batcher.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { GET_JOB_LUA, INDEX_JOBS_LUA, LIST_JOBS_LUA, SWEEP_INDEX_LUA } from '../redis/lua/job-scripts.js';
import { laneOrder } from '../redis/lua/fair-dispatch.js';
import {
  JOB_DEFAULTS,
  RETRY_BACKOFF_TYPE,
  type RetryBackoff,
  QUEUE_NAMES,
  QUEUES,
  queueOfJobId,
  queueOfType,
  type JobEnvelope,
  type JobOptions,
  type JobState,
  type JobType,
  type QueueName,
} from '../jobs/index.js';

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
  /** Only dead letters, walking their own index (the dead-letter aggregate): with `errorType`, those of one error type. */
  deadLetters?: { errorType?: string };
  /** Only jobs on this server (its own index: the cost stays that of the page). */
  serverId?: string;
  /** Created at or after this time (ms since the epoch). */
  createdAfter?: number;
  /** Created before this time (ms since the epoch). */
  createdBefore?: number;
  limit: number;
  cursor?: string;
};

type BulkJob = { name: JobType; data: JobEnvelope; opts: ReturnType<JobStore['jobOptions']> };

export type Added = { jobId: string; queue: QueueName; state: JobState };

export type JobPage = { jobs: JobView[]; nextCursor: string | null };
/** A list call whose cursor this API did not return. */
export type InvalidCursor = { status: 'invalid-cursor' };
export type ListOutcome = JobPage | InvalidCursor;
export type RemoveOutcome = { status: 'removed' } | { status: 'active' } | { status: 'missing' };
export type RetryOutcome = { status: 'retried'; state: JobState } | { status: 'not-failed'; state: JobState } | { status: 'missing' };

/** Index a job the API did not add itself (a schedule's run), so that listings show it. */
export async function indexJob(redis: Redis, prefix: string, queue: QueueName, jobId: string, tenant: string, createdAt: number, serverId = ''): Promise<void> {
  const { index } = redisKeys(prefix);
  const tx = redis
    .multi()
    .zadd(index.all(queue), createdAt, jobId)
    .zadd(index.tenant(queue, tenant), createdAt, jobId)
    .sadd(index.tenants(queue), tenant);
  if (serverId) tx.zadd(index.server(queue, serverId), createdAt, jobId).hset(index.serverOf(queue), jobId, serverId);
  await tx.exec();
}

/** Index entries younger than this are never pruned: their job may be in the middle of being added. */
export const INDEX_GRACE_MS = 10_000;

/** The event-stream entry of a job cancelled before it started (see remove). */
export const CANCELLED_EVENT = 'jobsapi:cancelled';
/** BullMQ's own cap on a queue's event stream (streams.events.maxLen): an entry of ours keeps it. */
const EVENTS_MAXLEN = 10_000;

/** Jobs per BullMQ addBulk call within one bulk request. */
const BULK_SLICE = 100;

/** How many index entries one list call may look at before it answers with a cursor. */
const LIST_SCAN_BUDGET = 2000;

type RawJob = (string | null)[];

/** What the store asks of fair dispatch: admit new jobs, with their order of arrival (src/coordination/fair-dispatch.ts). */
export type FairAdmission = { admit(queue: QueueName, jobs: ReadonlyArray<readonly [id: string, tenant: string, order: number]>): Promise<number> };

/** An index entry of a new job: creation time, id, tenant, server id ('' for none), and its place in its bulk request. */
type IndexEntry = [number, string, string, string, number];

/** The server a job's input names, if any (every job family has one). */
export function serverOfInput(input: unknown): string {
  const id = (input as { serverId?: unknown } | null)?.serverId;
  return typeof id === 'string' ? id : '';
}

/** One queue's walk of its index: rows of { id, score, state, fields... } and where it stopped (none: the index ended). */
type Walk = [string | null, string | null, RawJob[]];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiGetJob(qprefix: string, id: string): Promise<RawJob | null>;
    jobsapiListJobs(
      index: string,
      qprefix: string,
      member: string,
      serverOf: string,
      serverPrefix: string,
      deadJobs: string,
      deadPrefix: string,
      maxScore: string,
      cursorId: string,
      limit: number,
      state: string,
      type: string,
      budget: number,
      pruneBefore: number,
      minScore: string,
      checkMember: string,
    ): Promise<Walk>;
    jobsapiSweepIndex(
      allIndex: string,
      tenants: string,
      qprefix: string,
      tenantPrefix: string,
      serverOf: string,
      serverPrefix: string,
      cancelled: string,
      deadJobs: string,
      deadPrefix: string,
      cursor: string,
      count: number,
      pruneBefore: number,
    ): Promise<[string, number, number]>;
    jobsapiIndexJobs(
      allIndex: string,
      tenants: string,
      tenantPrefix: string,
      queuedPrefix: string,
      serverPrefix: string,
      serverOf: string,
      ...scoreIdTenantServer: Array<string | number>
    ): Promise<number>;
  }
}

/** Random bytes drawn 4 KiB at a time: one job id needs 16, and a system call per id shows in profiles. */
let idPool = Buffer.alloc(0);
let idOffset = 0;

function newJobId(queue: QueueName): string {
  if (idOffset + 16 > idPool.length) {
    idPool = randomBytes(4096);
    idOffset = 0;
  }
  const id = `${queue}_${idPool.toString('base64url', idOffset, idOffset + 16)}`;
  idOffset += 16;
  return id;
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

/** The score and id a cursor points after, or undefined when it is not a cursor this API returned. */
export function decodeCursor(cursor: string): [string, string] | undefined {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && /^\d{1,16}$/.test(String(v[0])) && typeof v[1] === 'string' && queueOfJobId(v[1])) {
      return [String(v[0]), v[1]];
    }
  } catch {
    // fall through
  }
  return undefined;
}

/**
 * Jobs as the API sees them: opaque ids, tenant ownership, a creation-time
 * index per tenant for cursor listing, and state reads that do not grow with
 * the queue's depth.
 */
export class JobStore {
  private readonly keys: RedisKeys;
  /** The dead-letter aggregate: failed jobs by tenant and error type. */
  readonly dead: DeadLetterIndex;

  constructor(
    readonly redis: Redis,
    prefix: string,
    readonly queues: Readonly<Record<QueueName, Queue>>,
    /** When set (a replica to fail over to), no enqueue is acknowledged before the replicas hold it. */
    private readonly replicas?: ReplicaConfirmer,
    /** Fair dispatch (src/coordination/fair-dispatch.ts): each new job stays ready or waits parked for its tenant's turn. */
    private readonly fair?: FairAdmission,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiGetJob', { numberOfKeys: 1, lua: GET_JOB_LUA });
    redis.defineCommand('jobsapiListJobs', { numberOfKeys: 7, lua: LIST_JOBS_LUA });
    redis.defineCommand('jobsapiIndexJobs', { numberOfKeys: 6, lua: INDEX_JOBS_LUA });
    redis.defineCommand('jobsapiSweepIndex', { numberOfKeys: 9, lua: SWEEP_INDEX_LUA });
    this.dead = new DeadLetterIndex(redis, prefix);
  }

  /** A queue's listing index: every job of it, or a tenant's. */
  indexKey(queue: QueueName, tenant: string | undefined): string {
    return tenant === undefined ? this.keys.index.all(queue) : this.keys.index.tenant(queue, tenant);
  }

  onIndexError?: (err: Error, jobId: string) => void;

  /**
   * BullMQ options of a job the API enqueues: our id and timestamp, the
   * queue's priority, the caller's options. Attempts and backoff not given
   * are the queue's defaults (the configuration's), merged in by BullMQ.
   */
  private jobOptions(queue: QueueName, jobId: string, now: number, options: JobOptions) {
    const delay = options.delay ?? 0;
    let backoff: RetryBackoff | undefined;
    if (options.backoffMs !== undefined || options.backoffMaxMs !== undefined) {
      const defaults = this.queues[queue].defaultJobOptions.backoff as Partial<RetryBackoff> | undefined;
      const delayMs = options.backoffMs ?? defaults?.delay ?? JOB_DEFAULTS.backoffMs;
      // A first ceiling above the default cap lifts the cap with it.
      const maxDelay = options.backoffMaxMs ?? Math.max(delayMs, defaults?.maxDelay ?? JOB_DEFAULTS.backoffMaxMs);
      backoff = { type: RETRY_BACKOFF_TYPE, delay: delayMs, maxDelay };
    }
    return {
      jobId,
      timestamp: now,
      priority: options.priority ?? QUEUES[queue].defaultPriority,
      ...(options.attempts !== undefined ? { attempts: options.attempts } : {}),
      ...(backoff ? { backoff } : {}),
      ...(delay > 0 ? { delay } : {}),
    };
  }

  /** Index entries of each queue's new jobs, written together per turn of the event loop (one script call per queue). */
  private readonly indexBatches = Object.fromEntries(
    QUEUE_NAMES.map((queue) => [
      queue,
      new TurnBatcher<IndexEntry>((entries) => {
        const { index } = this.keys;
        const indexed = this.redis.jobsapiIndexJobs(
          index.all(queue),
          index.tenants(queue),
          index.tenantPrefix(queue),
          index.queuedPrefix(queue),
          index.serverPrefix(queue),
          index.serverOf(queue),
          ...entries.flatMap(([createdAt, id, tenant, server]) => [createdAt, id, tenant, server]),
        );
        // Sent with the index write (same turn, same socket write): the jobs are in BullMQ already.
        const admitted = this.fair?.admit(queue, entries.map(([createdAt, id, tenant, , place]) => [id, tenant, laneOrder(createdAt, place)] as const));
        return Promise.all([indexed, admitted]);
      }),
    ]),
  ) as Record<QueueName, TurnBatcher<IndexEntry>>;

  private indexJobs(now: number, jobs: Array<{ jobId: string; queue: QueueName; envelope: JobEnvelope }>): Promise<void> {
    const perQueue = new Map<QueueName, IndexEntry[]>();
    for (const { jobId, queue, envelope } of jobs) {
      let entries = perQueue.get(queue);
      if (!entries) perQueue.set(queue, (entries = []));
      entries.push([now, jobId, envelope.tenant, serverOfInput(envelope.input), envelope.place ?? 0]);
    }
    return Promise.all([...perQueue].map(([queue, entries]) => this.indexBatches[queue].push(...entries))).then(() => undefined);
  }

  /** Enqueue one job; its index entry is written alongside, batched with those of concurrent requests. */
  async add(type: JobType, envelope: JobEnvelope, options: JobOptions = {}): Promise<Added> {
    const queue = queueOfType(type);
    const jobId = newJobId(queue);
    const now = Date.now();
    const added = this.queues[queue].add(type, envelope, this.jobOptions(queue, jobId, now, options));
    // Sent at the end of this turn, after BullMQ's add on the same connection, so Redis has the job when fair
    // dispatch decides whether it waits its tenant's turn (a job it does not find ready, it leaves alone).
    const indexed = this.indexJobs(now, [{ jobId, queue, envelope }]);
    const [addResult, indexResult] = await Promise.allSettled([added, indexed]);
    if (addResult.status === 'rejected') throw addResult.reason;
    // The job is accepted even if its index entry was not written: its status
    // still reads by id; only listings would miss it.
    if (indexResult.status === 'rejected') this.onIndexError?.(indexResult.reason as Error, jobId);
    await this.replicas?.confirm([jobId]);
    return { jobId, queue, state: (options.delay ?? 0) > 0 ? 'delayed' : 'waiting' };
  }

  /**
   * Enqueue many jobs in one round trip: BullMQ addBulk pipelines (a few per
   * queue, sent back to back) and one index write, all on the same connection.
   * Answers in the order of `items`.
   */
  async addBulk(items: ReadonlyArray<{ type: JobType; envelope: JobEnvelope; options?: JobOptions }>): Promise<Added[]> {
    const now = Date.now();
    const added: Added[] = [];
    const perQueue = new Map<QueueName, BulkJob[]>();
    // Jobs of one request share their creation time: each carries its place, which keeps the request's order among
    // its tenant's waiting jobs (fair dispatch), even for a job a worker took before it was admitted.
    const envelopes = items.length > 1 ? items.map(({ envelope }, place) => ({ ...envelope, place })) : items.map(({ envelope }) => envelope);
    items.forEach(({ type, options = {} }, i) => {
      const queue = queueOfType(type);
      const jobId = newJobId(queue);
      let list = perQueue.get(queue);
      if (!list) perQueue.set(queue, (list = []));
      list.push({ name: type, data: envelopes[i]!, opts: this.jobOptions(queue, jobId, now, options) });
      added.push({ jobId, queue, state: (options.delay ?? 0) > 0 ? 'delayed' : 'waiting' });
    });
    // Sent in slices, back to back without waiting: Redis starts on the first
    // slice while the next is being encoded, instead of waiting for all 1000.
    const adds: Promise<unknown>[] = [];
    for (const [queue, jobs] of perQueue) {
      for (let i = 0; i < jobs.length; i += BULK_SLICE) adds.push(this.queues[queue].addBulk(jobs.slice(i, i + BULK_SLICE)));
    }
    // Sent after the slices on the same connection (see add): fair dispatch finds the jobs in Redis.
    const indexed = this.indexJobs(now, items.map((_, i) => ({ jobId: added[i]!.jobId, queue: added[i]!.queue, envelope: envelopes[i]! }))).then(
      () => undefined,
      (err: Error) => err,
    );
    const addResults = await Promise.allSettled(adds);
    const failed = addResults.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const indexResult = await indexed;
    if (indexResult) this.onIndexError?.(indexResult, `${added.length} jobs from ${added[0]?.jobId}`);
    await this.replicas?.confirm(added.map((a) => a.jobId));
    return added;
  }

  private toView(id: string, queue: QueueName, raw: RawJob): JobView {
    const [state, name, data, attempts, progress, returnvalue, failedReason, timestamp, processedOn, finishedOn, atm] = raw;
    const envelope = (parseJson(data) ?? {}) as Partial<JobEnvelope>;
    const p = Number(progress ?? 0);
    return {
      id,
      queue,
      type: name as JobType,
      tenant: envelope.tenant ?? 'default',
      state: state as JobState,
      // A job that ended within one turn of the event loop wrote no progress; done is 100.
      progress: state === 'completed' ? 100 : Number.isFinite(p) ? p : 0,
      // Attempts made, plus the one running now. (BullMQ's attemptsStarted also counts the
      // times a job went back to `delayed` to wait for its server's lock: those are not attempts.)
      attempts: Number(atm ?? 0) + (state === 'active' ? 1 : 0),
      maxAttempts: Number(attempts ?? 1),
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
    const raw = await this.redis.jobsapiGetJob(this.keys.queue(queue), id);
    if (!raw) return undefined;
    const view = this.toView(id, queue, raw);
    if (tenant !== undefined && view.tenant !== tenant) return undefined;
    return view;
  }

  /** A page of jobs, newest first. Without a cursor the answer is always a page. */
  list(filter: ListFilter & { cursor?: undefined }): Promise<JobPage>;
  list(filter: ListFilter): Promise<ListOutcome>;
  async list(filter: ListFilter): Promise<ListOutcome> {
    const after: [string, string] | undefined = filter.cursor ? decodeCursor(filter.cursor) : ['+inf', ''];
    if (!after) return { status: 'invalid-cursor' };
    let [score, id] = after;
    // The time range is a range of the index's scores (creation times): half open, [createdAfter, createdBefore).
    if (filter.createdBefore !== undefined && (score === '+inf' || Number(score) > filter.createdBefore - 1)) {
      [score, id] = [String(filter.createdBefore - 1), ''];
    }
    const minScore = filter.createdAfter === undefined ? '-inf' : String(filter.createdAfter);
    if (filter.createdAfter !== undefined && Number(score) < filter.createdAfter) return { jobs: [], nextCursor: null };
    // Each queue has its own index (on its own node under Redis Cluster): walk
    // those the filters allow, side by side, and merge the walks.
    const only = filter.queue ?? (filter.type ? queueOfType(filter.type) : undefined);
    if (filter.queue && filter.type && queueOfType(filter.type) !== filter.queue) return { jobs: [], nextCursor: null };
    const queues = only ? [only] : QUEUE_NAMES;
    const pruneBefore = Date.now() - INDEX_GRACE_MS;
    const walks = await Promise.all(
      queues.map((queue) => {
        // By server: walk the server's index; for a tenant, list only what is in its own index too.
        const tenantIndex = filter.deadLetters ? this.dead.index(queue, filter.tenant, filter.deadLetters.errorType) : this.indexKey(queue, filter.tenant);
        const index = filter.serverId === undefined ? tenantIndex : this.keys.index.server(queue, filter.serverId);
        const checkTenant = filter.serverId !== undefined && filter.tenant !== undefined;
        return this.redis.jobsapiListJobs(
          index,
          this.keys.queue(queue),
          checkTenant ? tenantIndex : index,
          this.keys.index.serverOf(queue),
          this.keys.index.serverPrefix(queue),
          this.keys.deadLetters.jobs(queue),
          this.keys.deadLetters.prefix(queue),
          score,
          id,
          filter.limit,
          filter.state ?? '',
          filter.type ?? '',
          LIST_SCAN_BUDGET,
          pruneBefore,
          minScore,
          checkTenant ? '1' : '',
        );
      }),
    );
    const { rows, next } = mergeWalks(walks, filter.limit);
    const jobs = rows.map((row) => {
      const [jobId, , ...rest] = row as [string, string, ...RawJob];
      return this.toView(jobId, queueOfJobId(jobId)!, rest);
    });
    return { jobs, nextCursor: next ? encodeCursor(next[0], next[1]) : null };
  }

  /** A page of the job's log lines (all attempts, oldest first) and how many there are; undefined when the job is not visible. */
  async logs(id: string, tenant: string | undefined, start: number, limit: number): Promise<{ lines: string[]; count: number } | undefined> {
    const job = await this.get(id, tenant);
    if (!job) return undefined;
    const { logs, count } = await this.queues[job.queue].getJobLogs(id, start, start + limit - 1);
    return { lines: logs, count };
  }

  /**
   * Remove a job that is not running. With `cancelled`, an entry in its
   * queue's event stream says so (`jobsapi:cancelled`, with the job's type and
   * tenant, since its hash is gone): the webhook dispatcher sends it as `job.cancelled`.
   */
  async remove(id: string, tenant: string | undefined, opts: { cancelled?: boolean } = {}): Promise<RemoveOutcome> {
    const job = await this.get(id, tenant);
    if (!job) return { status: 'missing' };
    if (job.state === 'active') return { status: 'active' };
    const removed = await this.queues[job.queue].remove(id);
    if (!removed) {
      // Removal refuses a job that holds a lock: it became active in between.
      const again = await this.get(id, tenant);
      return again ? { status: 'active' } : { status: 'missing' };
    }
    const server = serverOfInput(job.data);
    const tx = this.redis
      .multi()
      .zrem(this.indexKey(job.queue, undefined), id)
      .zrem(this.indexKey(job.queue, job.tenant), id)
      .zrem(this.keys.index.queued(job.queue, job.tenant), id)
      .hdel(this.keys.index.serverOf(job.queue), id)
      .zrem(this.keys.cancelled(job.queue), id)
      // Parked for its tenant's turn, or ready with a slot reserved: neither is held any longer.
      .zrem(this.keys.fair(job.queue).lane(job.tenant), id)
      .hdel(this.keys.fair(job.queue).parked, id)
      .zrem(this.keys.tenantSlots(job.queue, job.tenant), id);
    if (server) tx.zrem(this.keys.index.server(job.queue, server), id);
    // Out of the dead-letter aggregate in the same transaction (it is no longer in `failed`); its answer comes with exec.
    if (job.state === 'failed' || job.state === 'cancelled') void tx.jobsapiDeadReconcile(...this.dead.reconcileKeys(job.queue), '', id, '');
    if (opts.cancelled) {
      tx.xadd(this.keys.queueEvents(job.queue), 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'event', CANCELLED_EVENT, 'jobId', id, 'name', job.type, 'tenant', job.tenant, 'prev', job.state);
    }
    await tx.exec();
    return { status: 'removed' };
  }

  async retry(id: string, tenant: string | undefined): Promise<RetryOutcome> {
    const view = await this.get(id, tenant);
    if (!view) return { status: 'missing' };
    // A cancelled job is a failed one to BullMQ: it may run again too.
    if (view.state !== 'failed' && view.state !== 'cancelled') return { status: 'not-failed', state: view.state };
    const job = await Job.fromId(this.queues[view.queue], id);
    if (!job) return { status: 'missing' };
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    } catch (err) {
      const now = await this.get(id, tenant);
      if (!now) return { status: 'missing' };
      if (now.state !== 'failed' && now.state !== 'cancelled') return { status: 'not-failed', state: now.state };
      throw err;
    }
    await this.redis.zrem(this.keys.cancelled(view.queue), id);
    await this.dead.reconcile(view.queue, [{ id }]);
    const after = await this.get(id, tenant);
    return { status: 'retried', state: after?.state ?? 'waiting' };
  }

  /**
   * One step of the sweep of a queue's index: look at about `count` entries
   * of the queue's all-jobs index from `cursor` (ZSCAN, so entries added or
   * removed meanwhile do not break the walk) and drop, from every index of
   * the queue, the entries whose job BullMQ no longer has (removed by
   * retention or by a caller). Entries younger than INDEX_GRACE_MS are left
   * alone: their job may be being added. One script call (SWEEP_INDEX_LUA).
   * Answers the next cursor ('0' once the whole index was walked).
   */
  async sweepStep(queue: QueueName, cursor: string, count: number, now = Date.now()): Promise<{ cursor: string; scanned: number; removed: number }> {
    const { index } = this.keys;
    const [next, scanned, removed] = await this.redis.jobsapiSweepIndex(
      index.all(queue),
      index.tenants(queue),
      this.keys.queue(queue),
      index.tenantPrefix(queue),
      index.serverOf(queue),
      index.serverPrefix(queue),
      this.keys.cancelled(queue),
      this.keys.deadLetters.jobs(queue),
      this.keys.deadLetters.prefix(queue),
      cursor,
      count,
      now - INDEX_GRACE_MS,
    );
    return { cursor: next, scanned, removed };
  }
}

/** Whether listing position (aScore, aId) comes before (bScore, bId): newer first, then the larger id (ZREVRANGEBYSCORE's order). */
function comesBefore(aScore: string, aId: string, bScore: string, bId: string): boolean {
  const d = Number(aScore) - Number(bScore);
  return d !== 0 ? d > 0 : aId > bId;
}

/**
 * Merge the walks of several queue indexes into one page that keeps the
 * cursor contract (every job listed once, newest first, across pages). A walk
 * that stopped early (its budget or limit) has read its index only down to
 * where it stopped; the page can only be sure of the order down to the
 * highest such stop, so it ends there at the latest and the next page starts
 * after it. Rows are { id, score, ... }; answers the page's rows and its
 * cursor (score, id), none when every index ended.
 */
export function mergeWalks(walks: readonly Walk[], limit: number): { rows: RawJob[]; next: [string, string] | null } {
  let bound: [string, string] | null = null;
  for (const [score, id] of walks) {
    if (score !== null && id !== null && (bound === null || comesBefore(score, id, bound[0], bound[1]))) bound = [score, id];
  }
  const rows = walks
    .flatMap(([, , r]) => r)
    .filter((r) => bound === null || !comesBefore(bound[0], bound[1], r[1]!, r[0]!))
    .sort((a, b) => (comesBefore(a[1]!, a[0]!, b[1]!, b[0]!) ? -1 : 1));
  if (rows.length > limit) {
    const page = rows.slice(0, limit);
    const last = page.at(-1)!;
    return { rows: page, next: [last[1]!, last[0]!] };
  }
  return { rows, next: bound };
}
