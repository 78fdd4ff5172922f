import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { UnauthorizedError } from '../errors.js';
import { redisKeys, type RedisKeys } from '../redis/keys.js';
import type { Principal } from '../tenant.js';

/** How long a ticket opens its stream (an EventSource that reconnects later asks for a new one). */
export const TICKET_TTL_MS = 60_000;

type Stored = { jobId: string; sub: string; tenant: string; isAdmin: boolean };

/**
 * Tickets for one job's event stream, for browsers: an EventSource cannot send
 * an Authorization header, and a bearer token in a URL ends up in logs and
 * history. A ticket is random, answers for one job only, opens nothing else
 * (only the events route reads it), and lives 60 s in Redis, so any API
 * process can honour it. Redis keeps a hash of it, never the ticket itself.
 */
export class StreamTickets {
  private readonly keys: RedisKeys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** A ticket for `jobId`'s events, for a principal already allowed to read the job. */
  async issue(principal: Principal, jobId: string): Promise<{ ticket: string; expiresAt: string }> {
    const ticket = randomBytes(24).toString('base64url');
    const stored: Stored = { jobId, sub: principal.sub, tenant: principal.tenant, isAdmin: principal.isAdmin };
    await this.redis.set(this.key(ticket), JSON.stringify(stored), 'PX', TICKET_TTL_MS);
    return { ticket, expiresAt: new Date(Date.now() + TICKET_TTL_MS).toISOString() };
  }

  /** Who a ticket speaks for, on `jobId`'s event stream only (read access, nothing more); a 401 otherwise. */
  async redeem(ticket: string, jobId: string): Promise<Principal> {
    const raw = /^[A-Za-z0-9_-]{32}$/.test(ticket) ? await this.redis.get(this.key(ticket)) : null;
    if (raw === null) throw new UnauthorizedError('The stream ticket is unknown or expired (they live 60 s): ask POST /api/jobs/{jobId}/stream-ticket for another.', 'TICKET_INVALID');
    const stored = JSON.parse(raw) as Stored;
    if (stored.jobId !== jobId) throw new UnauthorizedError(`The stream ticket is for job ${stored.jobId}, not this one.`, 'TICKET_INVALID');
    return { sub: stored.sub, tenant: stored.tenant, isAdmin: stored.isAdmin, scopes: new Set(['jobs:read']) };
  }

  private key(ticket: string): string {
    return this.keys.streamTicket(createHash('sha256').update(ticket).digest('hex'));
  }
}
