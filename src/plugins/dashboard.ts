import { createHash, timingSafeEqual } from 'node:crypto';
import basicAuth from '@fastify/basic-auth';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { QUEUE_NAMES } from '../jobs/index.js';

export const DASHBOARD_PATH = '/admin/queues';

type Role = 'admin' | 'viewer';

declare module 'fastify' {
  interface FastifyRequest {
    dashboardRole?: Role;
  }
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
 */
export async function dashboardPlugin(app: FastifyInstance): Promise<void> {
  const { adminUser, adminPassword, viewerUser, viewerPassword } = app.config.dashboard;
  if (!adminUser || !adminPassword) return;

  app.addHook('onRoute', (route) => {
    route.schema = { ...(route.schema ?? {}), hide: true };
  });
  await app.register(basicAuth, {
    authenticate: { realm: 'Jobs API dashboard' },
    validate: async (username: string, password: string, request: FastifyRequest) => {
      if (same(username, adminUser) && same(password, adminPassword)) request.dashboardRole = 'admin';
      else if (viewerUser && viewerPassword && same(username, viewerUser) && same(password, viewerPassword)) request.dashboardRole = 'viewer';
      else throw new UnauthorizedError('The dashboard needs the user name and password its operator configured.', 'DASHBOARD_LOGIN');
    },
  });
  app.addHook('onRequest', app.basicAuth);
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
