import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { errors } from '../src/http/schemas.js';

/** GET /metrics: Prometheus text exposition (src/observability/prometheus.ts defines the metrics). */
export default async function prometheusRoutes(app: FastifyInstance) {
  app.get(
    '/metrics',
    {
      onRequest: app.requireScope('metrics:read'),
      schema: {
        operationId: 'getPrometheusMetrics',
        tags: ['metrics'],
        summary: 'Prometheus metrics (text exposition format)',
        description:
          'For a scraper with a bearer token of scope metrics:read or admin: queue_waiting_jobs, queue_active_jobs, queue_delayed_jobs (gauges), queue_completed_total, queue_failed_total (counters), queue_wait_time_seconds, queue_processing_time_seconds (histograms) by queue (and type), http_request_duration_seconds, and the process metrics. Every API process reports the job counters of the whole system: aggregate them with max, not sum.',
        security: [{ bearerAuth: [] }],
        response: { 200: z.string().describe('text/plain; version=0.0.4'), ...errors(401, 403, 503) },
      },
    },
    async (_request, reply) => {
      reply.header('content-type', app.prometheus.contentType);
      return app.prometheus.metrics();
    },
  );
}
