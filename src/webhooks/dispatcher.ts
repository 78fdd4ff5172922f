import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { CANCELLED } from '../coordination/cancel-requests.js';
import { CANCELLED_EVENT } from '../store/job-store.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { CURSOR_ADVANCE_LUA } from '../redis/lua/webhooks.js';
import { DELIVERY_JOB_OPTIONS, deliveryId, type DeliveryJob, type WebhookEvent, type WebhookPayload } from './events.js';
import type { Webhook, WebhookStore } from './store.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiCursorAdvance(cursor: string, id: string): Promise<number>;
  }
}

/** How often each queue's event stream is read, and how many entries at most per read. */
const POLL_MS = 250;
const BATCH = 200;

type StreamEntry = [id: string, fields: string[]];

function fieldsOf(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[raw[i]!] = raw[i + 1]!;
  return out;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Turns job outcomes into webhook deliveries. It reads each job queue's
 * BullMQ event stream (`bull:{scan}:events`), which BullMQ's own scripts
 * append to in the same step that moves a job: `completed` and `failed`
 * (written only when a job fails for good, never for an attempt that will be
 * retried; a failure with the reason `cancelled` is a cancel) and `progress`.
 *
 * At least once: the position read up to is kept in Redis per queue and moved
 * forward only after the deliveries of every entry before it were added, so an
 * outcome is never skipped, even when every worker process was down while it
 * happened (within the stream's length, ~10,000 events per queue).
 * Never twice: every worker process reads the same entries; a delivery's job id
 * is derived from the webhook and the entry id, so BullMQ adds the first and
 * ignores the others (and an entry read again after a crash).
 */
export class WebhookDispatcher {
  private readonly keys: RedisKeys;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly store: WebhookStore,
    private readonly deliveries: Queue<DeliveryJob>,
    private readonly logger: Logger,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiCursorAdvance', { numberOfKeys: 1, lua: CURSOR_ADVANCE_LUA });
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: Error) => this.logger.warn({ err: err.message }, 'webhook dispatch failed; trying again'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, POLL_MS);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One read of every queue's stream. */
  private async tick(): Promise<void> {
    for (const queue of QUEUE_NAMES) await this.readQueue(queue);
  }

  private async readQueue(queue: QueueName): Promise<void> {
    const stream = this.keys.queueEvents(queue);
    const cursorKey = this.keys.webhookCursor(queue);
    const stored = await this.redis.get(cursorKey);
    let cursor: string;
    if (stored === null) {
      // First start: from now on (what happened before webhooks existed is not sent).
      const last = (await this.redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as StreamEntry[];
      cursor = last[0]?.[0] ?? '0-0';
      await this.redis.jobsapiCursorAdvance(cursorKey, cursor);
    } else cursor = stored;
    for (;;) {
      const read = await this.redis.xread('COUNT', BATCH, 'STREAMS', stream, cursor);
      const entries = read?.[0]?.[1] ?? [];
      if (entries.length === 0) return;
      // The tenants with webhooks, read after the entries: a webhook registered before an event is always
      // seen (read before, a webhook created meanwhile would miss the events of its first moments).
      const tenants = await this.store.tenants();
      // Webhooks per tenant, read once per batch.
      const hooks = new Map<string, Webhook[]>();
      for (const [id, raw] of entries) await this.dispatch(queue, id, fieldsOf(raw), tenants, hooks);
      cursor = entries[entries.length - 1]![0];
      await this.redis.jobsapiCursorAdvance(cursorKey, cursor);
      if (entries.length < BATCH || this.stopped) return;
    }
  }

  private async dispatch(queue: QueueName, entryId: string, f: Record<string, string>, tenants: Set<string>, hooks: Map<string, Webhook[]>): Promise<void> {
    const kind = f.event;
    if (tenants.size === 0 || !f.jobId) return;
    let name: string | null | undefined;
    let tenant: unknown;
    if (kind === CANCELLED_EVENT) {
      // Cancelled before it started: removed, so the entry itself says whose it was.
      name = f.name;
      tenant = f.tenant;
    } else if (kind === 'completed' || kind === 'failed' || kind === 'progress') {
      const [jobName, rawData] = await this.redis.hmget(`${this.keys.queue(queue)}${f.jobId}`, 'name', 'data');
      name = jobName;
      // A job removed since (removeOnComplete): nothing says whose it was.
      if (!rawData) return;
      tenant = (parseJson(rawData) as { tenant?: unknown } | null)?.tenant;
    } else return;
    if (!name || typeof tenant !== 'string' || !tenants.has(tenant)) return;
    let event: WebhookEvent;
    const data: WebhookPayload['data'] = { jobId: f.jobId, type: name, state: kind === 'progress' ? 'active' : kind === CANCELLED_EVENT ? 'removed' : kind };
    if (kind === CANCELLED_EVENT) {
      event = 'job.cancelled';
      data.failedReason = CANCELLED;
      data.previousState = f.prev ?? 'waiting';
    } else if (kind === 'completed') {
      event = 'job.completed';
      data.result = parseJson(f.returnvalue);
    } else if (kind === 'failed') {
      event = f.failedReason === CANCELLED ? 'job.cancelled' : 'job.failed';
      if (event === 'job.cancelled') data.state = 'cancelled';
      data.failedReason = f.failedReason ?? '';
    } else {
      event = 'job.progress';
      data.progress = parseJson(f.data);
    }
    let list = hooks.get(tenant);
    if (!list) {
      list = await this.store.list(tenant);
      hooks.set(tenant, list);
    }
    const targets = list.filter((h) => h.events.includes(event));
    if (targets.length === 0) return;
    const payload: WebhookPayload = { type: event, timestamp: new Date(Number(entryId.split('-')[0])).toISOString(), data };
    const body = JSON.stringify(payload);
    await this.deliveries.addBulk(
      targets.map((h) => ({
        name: event,
        data: { webhookId: h.id, tenant, event, jobId: f.jobId!, body },
        opts: { ...DELIVERY_JOB_OPTIONS, jobId: deliveryId(h.id, `${queue}/${entryId}`) },
      })),
    );
  }
}
