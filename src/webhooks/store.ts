import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import { WEBHOOK_CREATE_LUA, WEBHOOK_REMOVE_LUA, WEBHOOK_ROTATE_LUA } from '../redis/lua/webhooks.js';
import { newSecret } from './signing.js';
import { WEBHOOK_EVENTS, type WebhookEvent } from './events.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    jobsapiWebhookCreate(tenantSet: string, hash: string, tenants: string, cap: number, id: string, tenant: string, ...fields: string[]): Promise<[number, number]>;
    jobsapiWebhookRemove(hash: string, tenantSet: string, log: string, tenants: string, tenant: string, id: string): Promise<number>;
    jobsapiWebhookRotate(hash: string, tenant: string, secret: string, untilMs: number): Promise<number>;
  }
}

/** After a rotation, the old secret signs too for this long. */
export const PREVIOUS_SECRET_MS = 24 * 3600 * 1000;
/** Attempts kept in a webhook's delivery log. */
export const DELIVERY_LOG_LENGTH = 100;

export type Webhook = {
  id: string;
  tenant: string;
  url: string;
  events: WebhookEvent[];
  createdAt: string;
  secret: string;
  /** The secret before the last rotation, and until when (ms) it still signs. */
  previousSecret?: string;
  previousSecretUntil?: number;
};

/** One attempt of a delivery, as its webhook's log shows it. */
export type DeliveryAttempt = {
  /** The delivery's `webhook-id`, the same on every attempt. */
  id: string;
  event: WebhookEvent;
  jobId: string;
  attempt: number;
  /** `retrying`: this attempt failed and another comes; `failed`: it failed for good. */
  status: 'delivered' | 'retrying' | 'failed';
  statusCode: number | null;
  error: string | null;
  at: string;
  durationMs: number;
};

export type CreateOutcome = { status: 'created'; webhook: Webhook } | { status: 'full'; count: number };

function fromHash(h: Record<string, string>): Webhook | undefined {
  if (!h.id || !h.tenant || !h.url || !h.secret) return undefined;
  const events = (JSON.parse(h.events ?? '[]') as string[]).filter((e): e is WebhookEvent => (WEBHOOK_EVENTS as readonly string[]).includes(e));
  return {
    id: h.id,
    tenant: h.tenant,
    url: h.url,
    events,
    createdAt: h.createdAt ?? '',
    secret: h.secret,
    ...(h.previousSecret ? { previousSecret: h.previousSecret, previousSecretUntil: Number(h.previousSecretUntil ?? 0) } : {}),
  };
}

/** Webhook registrations and their delivery logs, in Redis under the `{webhooks}` tag; returns outcomes, never HTTP errors. */
export class WebhookStore {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
    redis.defineCommand('jobsapiWebhookCreate', { numberOfKeys: 3, lua: WEBHOOK_CREATE_LUA });
    redis.defineCommand('jobsapiWebhookRemove', { numberOfKeys: 4, lua: WEBHOOK_REMOVE_LUA });
    redis.defineCommand('jobsapiWebhookRotate', { numberOfKeys: 1, lua: WEBHOOK_ROTATE_LUA });
  }

  async create(tenant: string, url: string, events: readonly WebhookEvent[], cap: number): Promise<CreateOutcome> {
    const webhook: Webhook = { id: `wh_${randomBytes(16).toString('base64url')}`, tenant, url, events: [...events], createdAt: new Date().toISOString(), secret: newSecret() };
    const fields = ['id', webhook.id, 'tenant', tenant, 'url', url, 'events', JSON.stringify(webhook.events), 'createdAt', webhook.createdAt, 'secret', webhook.secret];
    const [added, count] = await this.redis.jobsapiWebhookCreate(this.keys.tenantWebhooks(tenant), this.keys.webhook(webhook.id), this.keys.webhookTenants, cap, webhook.id, tenant, ...fields);
    return added === 1 ? { status: 'created', webhook } : { status: 'full', count };
  }

  /** A webhook, when it exists and belongs to `tenant` (another tenant's is as missing). */
  async get(id: string, tenant: string): Promise<Webhook | undefined> {
    const hook = fromHash(await this.redis.hgetall(this.keys.webhook(id)));
    return hook?.tenant === tenant ? hook : undefined;
  }

  /** A tenant's webhooks, oldest first. */
  async list(tenant: string): Promise<Webhook[]> {
    const ids = await this.redis.smembers(this.keys.tenantWebhooks(tenant));
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.webhook(id));
    const rows = (await pipe.exec()) ?? [];
    return rows
      .map(([, h]) => fromHash((h ?? {}) as Record<string, string>))
      .filter((h): h is Webhook => h?.tenant === tenant)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** The tenants that have at least one webhook. */
  async tenants(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.keys.webhookTenants));
  }

  async remove(id: string, tenant: string): Promise<boolean> {
    const k = this.keys;
    return (await this.redis.jobsapiWebhookRemove(k.webhook(id), k.tenantWebhooks(tenant), k.webhookDeliveries(id), k.webhookTenants, tenant, id)) === 1;
  }

  /** A new secret (answered once); the old one signs too for PREVIOUS_SECRET_MS. */
  async rotate(id: string, tenant: string): Promise<{ secret: string; previousSecretUntil: number } | undefined> {
    const secret = newSecret();
    const until = Date.now() + PREVIOUS_SECRET_MS;
    const done = await this.redis.jobsapiWebhookRotate(this.keys.webhook(id), tenant, secret, until);
    return done === 1 ? { secret, previousSecretUntil: until } : undefined;
  }

  async recordAttempt(webhookId: string, entry: DeliveryAttempt): Promise<void> {
    const key = this.keys.webhookDeliveries(webhookId);
    // The webhook may be removed meanwhile: its log is not recreated then.
    if (!(await this.redis.exists(this.keys.webhook(webhookId)))) return;
    await this.redis.multi().lpush(key, JSON.stringify(entry)).ltrim(key, 0, DELIVERY_LOG_LENGTH - 1).exec();
  }

  /** The latest attempts, newest first. */
  async deliveries(webhookId: string): Promise<DeliveryAttempt[]> {
    const rows = await this.redis.lrange(this.keys.webhookDeliveries(webhookId), 0, DELIVERY_LOG_LENGTH - 1);
    return rows.map((r) => JSON.parse(r) as DeliveryAttempt);
  }
}

/** The secrets that sign a delivery now: the current one, and the previous one for a day after a rotation. */
export function signingSecrets(hook: Webhook, now = Date.now()): string[] {
  return hook.previousSecret && (hook.previousSecretUntil ?? 0) > now ? [hook.secret, hook.previousSecret] : [hook.secret];
}
