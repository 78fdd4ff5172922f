import { createHash, timingSafeEqual } from 'node:crypto';
import basicAuth from '@fastify/basic-auth';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ForbiddenError, UnauthorizedError } from '../errors.js';
import { QUEUE_NAMES } from '../jobs/index.js';

export const DASHBOARD_PATH = '/admin/queues';

type Role = 'admin' | 'viewer';

declare module 'fastify' {
  interface FastifyRequest {
    dashboardRole?: Role;
  }
}

/** Failed logins one address may make per LOGIN_WINDOW_MS before it must wait. */
const MAX_FAILED_LOGINS = 10;
const LOGIN_WINDOW_MS = 5 * 60_000;

/** Failed dashboard logins per client address (this process), forgotten once their window has passed. */
class LoginAttempts {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  /** Seconds the address must wait, or 0 when it may try. */
  waitSeconds(ip: string, now = Date.now()): number {
    const f = this.failures.get(ip);
    if (!f || now >= f.resetAt) return 0;
    return f.count >= MAX_FAILED_LOGINS ? Math.ceil((f.resetAt - now) / 1000) : 0;
  }

  failed(ip: string, now = Date.now()): void {
    const f = this.failures.get(ip);
    if (!f || now >= f.resetAt) {
      // Bounded: an address flood forgets the oldest.
      if (this.failures.size >= 10_000) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(ip, { count: 1, resetAt: now + LOGIN_WINDOW_MS });
    } else f.count += 1;
  }
}

/** Whether a state-changing request comes from a page of another site (a browser says so in Origin or Sec-Fetch-Site). */
function crossSite(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== 'null') {
    try {
      return new URL(origin).host !== request.headers.host;
    } catch {
      return true;
    }
  }
  if (origin === 'null') return true;
  const site = request.headers['sec-fetch-site'];
  return site === 'cross-site' || site === 'same-site';
}

/** Compare secrets in constant time (of their hashes: lengths differ freely). */
function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * bull-board at /admin/queues for the three queues, behind HTTP basic auth
 * (a browser asks for it): ADMIN_USER/ADMIN_PASSWORD may act (retry, remove,
 * pause, clean…), VIEWER_USER/VIEWER_PASSWORD may only look — the server
 * refuses the viewer's changes, whatever the page offers. Not mounted when
 * ADMIN_USER is not configured. Its routes stay out of the OpenAPI document.
 *
 * A browser sends the basic-auth login with every request to the dashboard,
 * whichever page asks: so a change whose Origin is another site is refused
 * (403), no page may frame the dashboard, and an address that fails to log in
 * MAX_FAILED_LOGINS times waits out LOGIN_WINDOW_MS (429).
 */
export async function dashboardPlugin(app: FastifyInstance): Promise<void> {
  const { adminUser, adminPassword, viewerUser, viewerPassword } = app.config.dashboard;
  if (!adminUser || !adminPassword) return;

  app.addHook('onRoute', (route) => {
    route.schema = { ...(route.schema ?? {}), hide: true };
  });
  const attempts = new LoginAttempts();
  await app.register(basicAuth, {
    authenticate: { realm: 'Jobs API dashboard' },
    validate: async (username: string, password: string, request: FastifyRequest) => {
      if (same(username, adminUser) && same(password, adminPassword)) request.dashboardRole = 'admin';
      else if (viewerUser && viewerPassword && same(username, viewerUser) && same(password, viewerPassword)) request.dashboardRole = 'viewer';
      else {
        attempts.failed(request.ip);
        throw new UnauthorizedError('The dashboard needs the user name and password its operator configured.', 'DASHBOARD_LOGIN');
      }
    },
  });
  // Refusals are written here, in the API's envelope: inside the dashboard bull-board's error handler would
  // drop their code and headers.
  const refuse = (reply: FastifyReply, request: FastifyRequest, err: AppError) =>
    reply.code(err.statusCode).headers(err.headers).send({ success: false, error: { code: err.code, message: err.message }, requestId: String(request.id) });
  app.addHook('onRequest', async (request, reply) => {
    const wait = attempts.waitSeconds(request.ip);
    if (wait > 0) {
      return refuse(reply, request, new AppError(429, 'TOO_MANY_LOGIN_ATTEMPTS', `Too many failed dashboard logins from this address; try again in ${wait} s.`, { 'retry-after': String(wait) }));
    }
  });
  app.addHook('onRequest', app.basicAuth);
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD' && crossSite(request)) {
      return refuse(reply, request, new AppError(403, 'CROSS_SITE_REQUEST', 'The dashboard takes changes from its own pages only (this request comes from another site).'));
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-frame-options', 'DENY').header('content-security-policy', "frame-ancestors 'none'");
  });
  app.addHook('onRequest', async (request) => {
    if (request.dashboardRole === 'viewer' && request.method !== 'GET' && request.method !== 'HEAD') {
      throw new ForbiddenError('This dashboard login may look but not change anything; log in as the admin user to act.');
    }
  });

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: QUEUE_NAMES.map((q) => new BullMQAdapter(app.queues[q], { displayName: q, description: `${q} jobs` })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Jobs API' } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
}
