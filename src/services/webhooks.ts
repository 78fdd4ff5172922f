import { lookup } from 'node:dns/promises';
import type { Redis } from 'ioredis';
import { AppError, BadRequestError, NotFoundError } from '../errors.js';
import type { Principal } from '../tenant.js';
import { isPrivateAddress, literalAddress } from '../webhooks/address-policy.js';
import { WebhookStore, type DeliveryAttempt, type Webhook } from '../webhooks/store.js';
import { WEBHOOK_EVENTS, type WebhookEvent } from '../webhooks/events.js';

export { WEBHOOK_EVENTS, type WebhookEvent };

/** A webhook as the API shows it: never its secrets (the secret is answered once, by create and rotate-secret). */
export type WebhookView = {
  id: string;
  url: string;
  events: WebhookEvent[];
  createdAt: string;
  /** Until when the secret before the last rotation still signs too, or null. */
  previousSecretExpiresAt: string | null;
};

function view(hook: Webhook, now = Date.now()): WebhookView {
  const until = hook.previousSecretUntil ?? 0;
  return {
    id: hook.id,
    url: hook.url,
    events: hook.events,
    createdAt: hook.createdAt,
    previousSecretExpiresAt: hook.previousSecret && until > now ? new Date(until).toISOString() : null,
  };
}

const ALLOW_HINT = 'set WEBHOOK_ALLOW_PRIVATE=on on the server to allow it';

/**
 * A tenant's webhooks: register (with a URL that is http(s) and, unless
 * WEBHOOK_ALLOW_PRIVATE=on, not on a loopback, link-local or private address),
 * list, remove, rotate the secret, read the delivery log. Every call acts on
 * the caller's own tenant; another tenant's webhook is a 404.
 */
export class WebhookService {
  readonly store: WebhookStore;

  constructor(
    redis: Redis,
    prefix: string,
    private readonly opts: { allowPrivate: boolean; maxPerTenant: number },
  ) {
    this.store = new WebhookStore(redis, prefix);
  }

  async create(principal: Principal, input: { url: string; events: WebhookEvent[] }): Promise<WebhookView & { secret: string }> {
    const url = await this.checkUrl(input.url);
    const events = WEBHOOK_EVENTS.filter((e) => input.events.includes(e));
    const out = await this.store.create(principal.tenant, url, events, this.opts.maxPerTenant);
    if (out.status === 'full') {
      throw new AppError(
        429,
        'TOO_MANY_WEBHOOKS',
        `Tenant "${principal.tenant}" has ${out.count} webhooks, the most allowed (TENANT_MAX_WEBHOOKS=${this.opts.maxPerTenant}); delete one first.`,
      );
    }
    return { ...view(out.webhook), secret: out.webhook.secret };
  }

  async list(principal: Principal): Promise<WebhookView[]> {
    return (await this.store.list(principal.tenant)).map((h) => view(h));
  }

  async get(principal: Principal, id: string): Promise<WebhookView> {
    return view(await this.find(principal, id));
  }

  async remove(principal: Principal, id: string): Promise<void> {
    if (!(await this.store.remove(id, principal.tenant))) throw this.notFound(id);
  }

  async rotateSecret(principal: Principal, id: string): Promise<{ id: string; secret: string; previousSecretExpiresAt: string }> {
    const out = await this.store.rotate(id, principal.tenant);
    if (!out) throw this.notFound(id);
    return { id, secret: out.secret, previousSecretExpiresAt: new Date(out.previousSecretUntil).toISOString() };
  }

  async deliveries(principal: Principal, id: string): Promise<DeliveryAttempt[]> {
    const hook = await this.find(principal, id);
    return this.store.deliveries(hook.id);
  }

  private async find(principal: Principal, id: string): Promise<Webhook> {
    const hook = await this.store.get(id, principal.tenant);
    if (!hook) throw this.notFound(id);
    return hook;
  }

  private notFound(id: string): NotFoundError {
    return new NotFoundError(`Webhook "${id}"`, 'WEBHOOK_NOT_FOUND');
  }

  /** The URL, normalised, or the 400 that says what is wrong with it. */
  private async checkUrl(raw: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new BadRequestError(`url: "${raw}" is not an absolute URL (e.g. https://hooks.example.com/jobs)`, 'INVALID_WEBHOOK_URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new BadRequestError(`url: the scheme must be http or https, not "${url.protocol.slice(0, -1)}"`, 'INVALID_WEBHOOK_URL');
    }
    if (url.username || url.password) {
      throw new BadRequestError('url: must not carry a user name or password (verify deliveries by their signature instead)', 'INVALID_WEBHOOK_URL');
    }
    url.hash = '';
    if (this.opts.allowPrivate) return url.toString();
    const literal = literalAddress(url.hostname);
    let addresses: string[];
    if (literal !== undefined) addresses = [literal];
    else {
      try {
        addresses = (await lookup(url.hostname, { all: true })).map((a) => a.address);
      } catch (err) {
        throw new BadRequestError(`url: the host "${url.hostname}" does not resolve (${(err as { code?: string }).code ?? 'lookup failed'})`, 'WEBHOOK_HOST_UNRESOLVED');
      }
    }
    const refused = addresses.find(isPrivateAddress);
    if (refused !== undefined) {
      throw new BadRequestError(
        `url: ${literal !== undefined ? refused : `"${url.hostname}" resolves to ${refused}, which`} is a loopback, link-local or private address, which webhooks may not reach; ${ALLOW_HINT}`,
        'WEBHOOK_ADDRESS_REFUSED',
      );
    }
    return url.toString();
  }
}
