import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BulkInvalidError, type ItemError } from '../src/errors.js';
import { JOB_DATA_SCHEMAS, JOB_STATES, JOB_TYPES, jobOptionsSchema, QUEUE_NAMES, serverIdSchema, type JobType } from '../src/jobs/index.js';
import { errors, idempotentHeaders, jobIdParams, jobViewSchema, okEnvelope, queueCountsSchema } from '../src/http/schemas.js';
import { ended, parseLastEventId, streamJobEvents } from '../src/http/job-stream.js';
import { visibleTenant, type Principal } from '../src/tenant.js';
import { HOLD_CODES } from '../src/services/job-explain.js';

function submission<T extends JobType>(type: T) {
  return z.strictObject({
    type: z.literal(type),
    data: JOB_DATA_SCHEMAS[type],
    options: jobOptionsSchema.optional(),
  });
}

/** The body of one job type, with that type's data schema. */
type TypedSubmission = { [T in JobType]: ReturnType<typeof submission<T>> }[JobType];

const submitBody = z.discriminatedUnion(
  'type',
  JOB_TYPES.map((type) => submission(type)) as [TypedSubmission, ...TypedSubmission[]],
  { error: () => `must be one of ${JOB_TYPES.join(', ')}` },
);

const submittedSchema = z.object({
  jobId: z.string(),
  queue: z.enum(QUEUE_NAMES),
  type: z.enum(JOB_TYPES),
  state: z.enum(JOB_STATES),
});

/** The most jobs one bulk request may carry. */
export const BULK_MAX_JOBS = 1000;

const bulkBody = z.strictObject({
  jobs: z.array(submitBody).min(1).max(BULK_MAX_JOBS).describe(`1..${BULK_MAX_JOBS} jobs, each as POST /api/jobs takes it`),
});

/** Per-item problems of a bulk body that failed schema validation; undefined when the list itself is wrong. */
function itemErrors(err: FastifyError): ItemError[] | undefined {
  const byIndex = new Map<number, string[]>();
  for (const v of err.validation ?? []) {
    const [list, index, ...rest] = String(v.instancePath ?? '').split('/').filter(Boolean);
    if (list !== 'jobs' || index === undefined || !/^\d+$/.test(index)) return undefined;
    const messages = byIndex.get(Number(index)) ?? [];
    messages.push(`${[`jobs[${index}]`, ...rest].join('.')}: ${v.message}`);
    byIndex.set(Number(index), messages);
  }
  return [...byIndex].sort(([a], [b]) => a - b).map(([index, messages]) => ({ index, code: 'VALIDATION_ERROR', message: messages.join('; ') }));
}

const cancelSchema = z.object({
  jobId: z.string(),
  outcome: z
    .enum(['removed', 'cancelled', 'cancelling'])
    .describe('removed: it had not started and is gone; cancelled: it was running and has failed with the reason `cancelled`; cancelling: it is still stopping'),
  job: jobViewSchema.nullable().describe('the job as it is now; null once removed'),
});

const waitQuery = z.strictObject({
  waitMs: z.coerce
    .number()
    .int()
    .min(0)
    .max(60_000)
    .optional()
    .describe('wait up to this many milliseconds (at most 60000) for the job to complete or fail'),
});

const logsQuery = z.strictObject({
  start: z.coerce.number().int().min(0).default(0).describe('index of the first line, 0 = the oldest'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('1..1000, default 100'),
});

const instant = (what: string) =>
  z.iso
    .datetime({ offset: true })
    .optional()
    .describe(`${what} (ISO 8601 with a time zone: 2026-12-01T00:00:00Z)`)
    .transform((v) => (v === undefined ? undefined : Date.parse(v)));

const listQuery = z
  .strictObject({
    queue: z.enum(QUEUE_NAMES).optional(),
    state: z.enum(JOB_STATES).optional(),
    type: z.enum(JOB_TYPES).optional(),
    serverId: serverIdSchema.optional().describe('only the jobs on this server'),
    createdAfter: instant('only jobs created at or after this time'),
    createdBefore: instant('only jobs created before this time'),
    limit: z.coerce.number().int().min(1).max(100).default(20).describe('1..100, default 20'),
    cursor: z.string().max(400).optional().describe('nextCursor of the previous page'),
  })
  .refine((q) => q.createdAfter === undefined || q.createdBefore === undefined || q.createdAfter < q.createdBefore, {
    message: 'createdAfter must be before createdBefore',
    path: ['createdAfter'],
  });

const security = [{ bearerAuth: [] }];

/** The job routes, in four groups (registered in this order, which is the order of the OpenAPI document). */
export default async function jobRoutes(app: FastifyInstance) {
  enqueueRoutes(app);
  countRoutes(app);
  readRoutes(app);
  controlRoutes(app);
}

/** POST /api/jobs and POST /api/jobs/bulk. */
function enqueueRoutes(fastify: FastifyInstance): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const write = app.requireScope('jobs:write');

  app.post(
    '',
    {
      onRequest: write,
      config: { idempotent: true },
      schema: {
        operationId: 'submitJob',
        tags: ['jobs'],
        summary: 'Enqueue a job',
        description: 'The job runs on a server of your inventory. Answers 202 with the job id and a Location header to poll.',
        security,
        body: submitBody,
        headers: idempotentHeaders,
        response: { 202: okEnvelope(submittedSchema), 200: okEnvelope(submittedSchema).describe('a repeat with the same Idempotency-Key'), ...errors(400, 401, 403, 409, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const { type, data, options } = request.body;
      const job = await app.jobs.submit(request.principal, type, data, options);
      reply.code(202).header('location', `/api/jobs/${job.jobId}`);
      return { success: true as const, data: { jobId: job.jobId, queue: job.queue, type: job.type, state: job.state } };
    },
  );

  app.post(
    '/bulk',
    {
      onRequest: write,
      config: { idempotent: true },
      attachValidation: true,
      schema: {
        operationId: 'submitJobs',
        tags: ['jobs'],
        summary: `Enqueue up to ${BULK_MAX_JOBS} jobs at once, all or none`,
        description:
          'Each item is what POST /api/jobs takes and is checked the same way. When any item is invalid nothing is enqueued: ' +
          'the 400 has code BULK_INVALID and error.details lists each bad item by its index. Otherwise the jobs are enqueued ' +
          'in one round trip to Redis and data.jobs answers in the order of the request.',
        security,
        body: bulkBody,
        headers: idempotentHeaders,
        response: {
          202: okEnvelope(z.object({ count: z.number().int(), jobs: z.array(submittedSchema) })),
          200: okEnvelope(z.object({ count: z.number().int(), jobs: z.array(submittedSchema) })).describe('a repeat with the same Idempotency-Key'),
          ...errors(400, 401, 403, 409, 413, 415, 422, 503),
        },
      },
    },
    async (request, reply) => {
      if (request.validationError) throw invalidBulk(app, request.validationError as FastifyError, request.principal, request.body);
      const jobs = await app.jobs.submitBulk(request.principal, request.body.jobs);
      reply.code(202);
      return { success: true as const, data: { count: jobs.length, jobs: jobs.map(({ jobId, queue, type, state }) => ({ jobId, queue, type, state })) } };
    },
  );
}

/**
 * The error of a bulk body that failed schema validation. Every bad item is
 * reported at once: the items whose shape is right are checked against the
 * inventory too. A body whose list itself is wrong keeps the validation error.
 */
function invalidBulk(app: FastifyInstance, err: FastifyError, principal: Principal, body: { jobs: unknown[] }): Error {
  const invalid = itemErrors(err);
  if (!invalid) return err;
  const items = body.jobs;
  const shaped = new Set(invalid.map((d) => d.index));
  const details = [...invalid];
  items.forEach((item, index) => {
    if (shaped.has(index)) return;
    const parsed = submitBody.safeParse(item);
    const problem = parsed.success ? app.jobs.itemProblem(principal, parsed.data, index) : undefined;
    if (problem) details.push(problem);
  });
  return new BulkInvalidError(details.sort((a, b) => a.index - b.index), items.length);
}

/** GET /api/jobs/stats/all. */
function countRoutes(fastify: FastifyInstance): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/stats/all',
    {
      onRequest: app.requireScope('metrics:read'),
      schema: {
        operationId: 'getJobStats',
        tags: ['jobs'],
        summary: 'Job counts per queue and in total (all tenants; needs metrics:read or admin)',
        security,
        response: {
          200: okEnvelope(z.object({ backup: queueCountsSchema, scan: queueCountsSchema, update: queueCountsSchema, total: queueCountsSchema })),
          ...errors(401, 403, 503),
        },
      },
    },
    async () => ({ success: true as const, data: await app.stats.jobCounts() }),
  );
}

/** GET /api/jobs/:id, its events and its logs, and GET /api/jobs (the list). */
function readRoutes(fastify: FastifyInstance): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const read = app.requireScope('jobs:read');

  app.get(
    '/:id',
    {
      onRequest: read,
      schema: {
        operationId: 'getJob',
        tags: ['jobs'],
        summary: 'Read a job: state, progress, result or failure reason; with waitMs, wait for it to end',
        description:
          'With `waitMs` (1..60000) the answer comes as soon as the job has completed or failed, or when the wait ends — whichever is first — with the same body: a shell script waits without polling.',
        security,
        params: jobIdParams,
        querystring: waitQuery,
        response: { 200: okEnvelope(jobViewSchema), ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const { waitMs } = request.query;
      if (!waitMs) return { success: true as const, data: await app.jobs.get(request.principal, request.params.id) };
      const gone = new AbortController();
      request.raw.once('close', () => gone.abort());
      const job = await app.jobs.waitFor(request.principal, request.params.id, waitMs, app.events, gone.signal);
      return { success: true as const, data: job };
    },
  );

  const holdReasonSchema = z
    .object({
      code: z.enum(HOLD_CODES).describe(
        'QUEUE_PAUSED, NO_WORKER (no live worker process serves the queue), DELAYED (its own delay, a schedule, or a turn it waits for), ' +
          'RETRY_BACKOFF (an attempt failed; the next one waits), RATE_LIMITED (the queue\'s QUEUE_RATE_LIMITS), TENANT_AT_CAP (fair scheduling), ' +
          'TENANT_THROTTLED (its tenant\'s throttle of job starts is used up for now), SERVER_LOCKED (one job at a time per server), TENANT_TURN (parked until a slot frees for its tenant: fair dispatch), WAITING_IN_LINE (its place among the waiting jobs)',
      ),
      message: z.string().describe('what holds it, in a sentence with its figures'),
      queue: z.enum(QUEUE_NAMES).optional().describe('QUEUE_PAUSED, NO_WORKER, RATE_LIMITED, TENANT_AT_CAP, TENANT_THROTTLED, SERVER_LOCKED, TENANT_TURN, WAITING_IN_LINE'),
      tenant: z.string().optional().describe('TENANT_AT_CAP: the tenant at its cap; TENANT_TURN: the job\'s tenant; TENANT_THROTTLED: the throttled tenant'),
      cap: z.number().int().optional().describe('TENANT_AT_CAP: its active jobs allowed in the queue (TENANT_MAX_ACTIVE or an override, within TENANT_MAX_SHARE of the capacity)'),
      active: z.number().int().optional().describe('TENANT_AT_CAP: its jobs running now'),
      holders: z.array(z.string()).optional().describe('TENANT_AT_CAP: the jobs that hold its slots (the first 50)'),
      serverId: z.string().optional().describe('SERVER_LOCKED: the server'),
      holder: z.string().optional().describe('SERVER_LOCKED: the job that holds the server\'s lock'),
      until: z.string().optional().describe('RATE_LIMITED, DELAYED, RETRY_BACKOFF: when it ends (ISO 8601)'),
      max: z.number().int().optional().describe('RATE_LIMITED, TENANT_THROTTLED: jobs that may start per window'),
      durationMs: z.number().int().optional().describe('RATE_LIMITED, TENANT_THROTTLED: the window (ms)'),
      attemptsMade: z.number().int().optional().describe('RETRY_BACKOFF: attempts made (and failed) so far'),
      maxAttempts: z.number().int().optional().describe('RETRY_BACKOFF: attempts it may make'),
      failedReason: z.string().optional().describe('RETRY_BACKOFF: why the last attempt failed'),
      priority: z.number().int().optional().describe('WAITING_IN_LINE: its priority (1 runs first; 0: none)'),
      position: z.number().int().optional().describe('WAITING_IN_LINE: its place among the waiting jobs of its priority, 1 = next; TENANT_TURN: its place among its tenant\'s parked jobs of the queue'),
      samePriority: z.number().int().optional().describe('WAITING_IN_LINE: the waiting jobs of its priority'),
      ahead: z.number().int().optional().describe('WAITING_IN_LINE: the jobs of the queue that start before it, every priority counted; TENANT_TURN: its tenant\'s parked jobs before it'),
      tenants: z.number().int().optional().describe('TENANT_TURN: the tenants with jobs parked in the queue, its own included (slots go to each in turn)'),
    })
    .describe('HoldReason');

  app.get(
    '/:id/explain',
    {
      onRequest: read,
      schema: {
        operationId: 'explainJob',
        tags: ['jobs'],
        summary: 'Why is this job not running? Every reason that holds it, with its figures',
        description:
          'For a waiting or delayed job (`held: true`): each thing that keeps it from starting now — the queue paused, no live worker, its delay or a retry\'s backoff, ' +
          'the queue\'s rate limit, its tenant at its cap (and which jobs hold the slots), its server\'s lock (and which job holds it), and its place in line. ' +
          'For a running or finished job, `held: false` and `summary` says so (a failed job\'s reason and attempts). Read at the time of the call: it may change a moment later.',
        security,
        params: jobIdParams,
        response: {
          200: okEnvelope(
            z.object({
              jobId: z.string(),
              queue: z.enum(QUEUE_NAMES),
              state: z.enum(JOB_STATES),
              held: z.boolean().describe('true while the job is waiting or delayed'),
              summary: z.string().describe('the short answer, in a sentence'),
              attempts: z.number().int(),
              maxAttempts: z.number().int(),
              failedReason: z.string().nullable(),
              reasons: z.array(holdReasonSchema).describe('empty when nothing holds it'),
            }).describe('JobExplanation'),
          ),
          ...errors(401, 403, 404, 503),
        },
      },
    },
    async (request) => ({ success: true as const, data: await app.explainer.explain(request.principal, request.params.id) }),
  );

  app.post(
    '/:id/stream-ticket',
    {
      onRequest: read,
      schema: {
        operationId: 'createStreamTicket',
        tags: ['jobs'],
        summary: 'A ticket that opens this job\'s event stream for 60 s, for a browser\'s EventSource',
        description:
          'EventSource cannot send an Authorization header, and a bearer token in a URL ends up in logs and history. ' +
          'Ask for a ticket with the token, then open `GET /api/jobs/{id}/events?ticket=...`. A ticket opens that one job\'s events and nothing else; ' +
          'it may open them again (an EventSource reconnecting) until it expires, after which the events route answers 401 `TICKET_INVALID`.',
        security,
        params: jobIdParams,
        response: {
          200: okEnvelope(
            z.object({
              ticket: z.string(),
              expiresAt: z.string(),
              url: z.string().describe('the event stream with the ticket: give it to `new EventSource(url)`'),
            }),
          ),
          ...errors(401, 403, 404, 503),
        },
      },
    },
    async (request) => {
      const job = await app.jobs.get(request.principal, request.params.id);
      const { ticket, expiresAt } = await app.tickets.issue(request.principal, job.id);
      return { success: true as const, data: { ticket, expiresAt, url: `/api/jobs/${encodeURIComponent(job.id)}/events?ticket=${ticket}` } };
    },
  );

  // A browser's EventSource sends no Authorization header: it comes with a ticket instead (and only here).
  const readOrTicket = async (request: FastifyRequest, reply: FastifyReply) => {
    const { ticket } = request.query as { ticket?: string | string[] };
    if (ticket === undefined) return read.call(app, request, reply);
    request.principal = await app.tickets.redeem(typeof ticket === 'string' ? ticket : '', (request.params as { id: string }).id);
  };

  app.get(
    '/:id/events',
    {
      onRequest: readOrTicket,
      schema: {
        operationId: 'streamJobEvents',
        tags: ['jobs'],
        summary: 'Server-sent events of a job: a snapshot, then progress, log, completed or failed as they happen',
        description: [
          'text/event-stream. First `snapshot` (the job, as GET /api/jobs/:id), then the log lines already written (`log`),',
          'then `progress` ({ progress }), `log` ({ index, line }), and finally `completed`, `failed` or `cancelled` (the job), or `removed` ({ jobId }: removed, or cancelled before it started), after which the stream ends.',
          'A comment line `: heartbeat` every 15 s while idle. Each event id is the number of log lines sent so far: reconnect with',
          '`Last-Event-ID` and you get a new snapshot and the log lines after that number — nothing is missed. Works with `curl -N`.',
          'The last event\'s id ends in `-end`: reconnecting with it (the job has ended, the client saw it) is answered 204, which stops a browser\'s EventSource.',
        ].join(' '),
        security: [...security, { streamTicket: [] }],
        params: jobIdParams,
        querystring: z.object({
          ticket: z.string().optional().describe('a ticket from POST /api/jobs/{id}/stream-ticket, instead of the Authorization header (browsers)'),
          lastEventId: z.string().optional().describe('as the Last-Event-ID header, for a client that cannot set it (a new EventSource)'),
        }),
        response: {
          200: {
            description: 'The event stream',
            content: {
              'text/event-stream': {
                schema: z.string().describe('event: snapshot|progress|log|completed|failed|cancelled|removed, id: log lines sent (the last one ends in -end), data: JSON'),
              },
            },
          },
          204: z.null().describe('the job has ended and Last-Event-ID says the client saw its last event: nothing more will come'),
          ...errors(401, 403, 404, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const first = await app.jobs.get(request.principal, request.params.id);
      const header = request.headers['last-event-id'];
      const last = parseLastEventId(typeof header === 'string' ? header : request.query.lastEventId);
      if (last.sawEnd && ended(first)) return reply.code(204).send(null);
      await streamJobEvents(app, reply, first, last.fromLog, visibleTenant(request.principal), request.principal.tenant);
    },
  );

  app.get(
    '/:id/logs',
    {
      onRequest: read,
      schema: {
        operationId: 'getJobLogs',
        tags: ['jobs'],
        summary: 'Read a job\'s log lines (an update\'s command output), a page at a time',
        description:
          'Lines are kept across attempts, oldest first; they are written while the job runs, so a running job can be followed ' +
          'by asking again from nextStart. nextStart is null when there is nothing more yet.',
        security,
        params: jobIdParams,
        querystring: logsQuery,
        response: {
          200: okEnvelope(
            z.object({
              jobId: z.string(),
              start: z.number().int(),
              count: z.number().int().describe('lines the job has logged so far'),
              lines: z.array(z.string()),
              nextStart: z.number().int().nullable().describe('start of the next page, or null'),
            }),
          ),
          ...errors(400, 401, 403, 404, 503),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const { start, limit } = request.query;
      const page = await app.jobs.logs(request.principal, id, start, limit);
      const next = start + page.lines.length;
      return { success: true as const, data: { jobId: id, start, count: page.count, lines: page.lines, nextStart: next < page.count ? next : null } };
    },
  );

  app.get(
    '',
    {
      onRequest: read,
      schema: {
        operationId: 'listJobs',
        tags: ['jobs'],
        summary: 'List your jobs, newest first, a page at a time',
        description:
          'Pass nextCursor back as cursor for the next page, with the same filters; it is null after the last page. With the state or type filters, a page may hold fewer than limit jobs while nextCursor is not null. ' +
          'serverId and the creation time range (createdAfter inclusive, createdBefore exclusive) read their own indexes: a page costs what it returns, however many jobs there are.',
        security,
        querystring: listQuery,
        response: { 200: okEnvelope(z.object({ jobs: z.array(jobViewSchema), nextCursor: z.string().nullable() })), ...errors(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { queue, state, type, serverId, createdAfter, createdBefore, limit, cursor } = request.query;
      return { success: true as const, data: await app.jobs.list(request.principal, { queue, state, type, serverId, createdAfter, createdBefore, limit, cursor }) };
    },
  );
}

/** DELETE /api/jobs/:id, and its retry, cancel and promote. */
function controlRoutes(fastify: FastifyInstance): void {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const write = app.requireScope('jobs:write');

  app.delete(
    '/:id',
    {
      onRequest: write,
      schema: {
        operationId: 'removeJob',
        tags: ['jobs'],
        summary: 'Remove a job that is not running',
        security,
        params: jobIdParams,
        response: { 200: okEnvelope(z.object({ jobId: z.string(), removed: z.literal(true) })), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      await app.jobs.remove(request.principal, id);
      return { success: true as const, data: { jobId: id, removed: true as const } };
    },
  );

  app.post(
    '/:id/retry',
    {
      onRequest: write,
      schema: {
        operationId: 'retryJob',
        tags: ['jobs'],
        summary: 'Run a failed job again, with a fresh set of attempts',
        security,
        params: jobIdParams,
        response: { 200: okEnvelope(z.object({ jobId: z.string(), state: z.enum(JOB_STATES) })), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      return { success: true as const, data: { jobId: id, state: await app.jobs.retry(request.principal, id) } };
    },
  );

  app.post(
    '/:id/cancel',
    {
      onRequest: write,
      schema: {
        operationId: 'cancelJob',
        tags: ['jobs'],
        summary: 'Stop a job: remove it when waiting or delayed, abort it when running',
        description:
          'A waiting or delayed job is removed (200, outcome `removed`). A running one is stopped (an update\'s process tree is killed, a backup or restore leaves no partial file, a scan stops probing) and fails with the reason `cancelled`, without further attempts: 200 with outcome `cancelled` once it has stopped, or 202 with outcome `cancelling` when it takes longer than 5 s. A finished job is a 409.',
        security,
        params: jobIdParams,
        response: {
          200: okEnvelope(cancelSchema),
          202: okEnvelope(cancelSchema),
          ...errors(401, 403, 404, 409, 503),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { outcome, job } = await app.jobs.cancel(request.principal, id);
      if (outcome === 'cancelling') reply.code(202);
      return { success: true as const, data: { jobId: id, outcome, job } };
    },
  );

  app.post(
    '/:id/promote',
    {
      onRequest: write,
      schema: {
        operationId: 'promoteJob',
        tags: ['jobs'],
        summary: 'Run a delayed job now',
        security,
        params: jobIdParams,
        response: { 200: okEnvelope(jobViewSchema), ...errors(401, 403, 404, 409, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.queueOps.promote(request.params.id, visibleTenant(request.principal)) }),
  );
}
