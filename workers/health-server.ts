import Fastify, { type FastifyInstance } from 'fastify';
import { errorHandlerPlugin } from '../src/http/error-handler.js';
import { pingWithin } from '../src/redis/connection.js';
import { notReady } from '../src/services/stats.js';
import { API_VERSION } from '../src/version.js';
import type { WorkerRuntime } from './runtime.js';

/** How long /ready waits for Redis to answer PING: a frozen Redis must not hang the probe. */
const READY_TIMEOUT_MS = 1000;

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
  app.get('/ready', async () => {
    const { connection, workers } = runtime;
    if (!(await pingWithin(connection, READY_TIMEOUT_MS))) throw notReady('Redis does not answer.');
    const stopped = Object.entries(workers).filter(([, w]) => !w.isRunning()).map(([q]) => q);
    if (stopped.length) throw notReady(`Workers are not running for: ${stopped.join(', ')}.`);
    return { success: true as const, data: { status: 'ready' as const, redis: 'ok' as const, workers: 'running' as const } };
  });
  await app.listen(listen);
  return app;
}
