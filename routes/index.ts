import type { FastifyInstance } from 'fastify';
import healthRoutes from './health.js';
import jobRoutes from './jobs.js';
import metricsRoutes from './metrics.js';
import serverRoutes from './servers.js';

/** Every route of the API, registered explicitly. */
export async function registerRoutes(app: FastifyInstance): Promise<void> {
  await app.register(healthRoutes);
  await app.register(jobRoutes, { prefix: '/api/jobs' });
  await app.register(serverRoutes, { prefix: '/api/servers' });
  await app.register(metricsRoutes, { prefix: '/api/metrics' });
}
