import type { FastifyInstance } from 'fastify';
import deadLetterRoutes from './dead-letters.js';
import healthRoutes from './health.js';
import jobRoutes from './jobs.js';
import metricsRoutes from './metrics.js';
import prometheusRoutes from './prometheus.js';
import queueRoutes from './queues.js';
import queueCapacityRoutes from './queue-capacity.js';
import scheduleRoutes from './schedules.js';
import serverRoutes from './servers.js';
import tenantRoutes from './tenants.js';
import uiRoutes from './ui.js';
import webhookRoutes from './webhooks.js';
import workerRoutes from './workers.js';

/** Every route of the API, registered explicitly. */
export async function registerRoutes(app: FastifyInstance): Promise<void> {
  await app.register(healthRoutes);
  await app.register(jobRoutes, { prefix: '/api/jobs' });
  await app.register(serverRoutes, { prefix: '/api/servers' });
  await app.register(metricsRoutes, { prefix: '/api/metrics' });
  await app.register(prometheusRoutes);
  await app.register(queueRoutes, { prefix: '/api/queues' });
  await app.register(queueCapacityRoutes, { prefix: '/api/queues' });
  await app.register(deadLetterRoutes, { prefix: '/api/dead-letters' });
  await app.register(workerRoutes, { prefix: '/api/workers' });
  await app.register(scheduleRoutes, { prefix: '/api/schedules' });
  await app.register(tenantRoutes, { prefix: '/api/tenants' });
  await app.register(webhookRoutes, { prefix: '/api/webhooks' });
  await app.register(uiRoutes);
}
