import Fastify, { type FastifyInstance } from 'fastify';
import { errorHandlerPlugin } from '../src/http/error-handler.js';
import { readiness } from '../src/services/stats.js';
import { API_VERSION } from '../src/version.js';
import type { WorkerRuntime } from './runtime.js';


/**
 * The worker-only process's probes, for a supervisor or Kubernetes:
 * GET /health answers while the process lives; GET /ready answers 503 (with
 * Retry-After) while Redis does not answer or a worker has stopped. Same
 * envelope as the API's /health and /ready.
 */
export async function startHealthServer(runtime: WorkerRuntime, listen: { port: number; host: string }): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  await app.register(errorHandlerPlugin);
  app.get('/health', async () => ({ success: true as const, data: { status: 'ok' as const, version: API_VERSION, uptimeSec: Math.round(process.uptime()) } }));
  app.get('/ready', async () => ({ success: true as const, data: await readiness(runtime.connection, runtime.workers) }));
  await app.listen(listen);
  return app;
}
