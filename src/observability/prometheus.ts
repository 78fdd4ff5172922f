import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import client from 'prom-client';
import type { AnyJobEvent } from '../services/job-events.js';
import { QUEUE_NAMES, type QueueName } from '../jobs/index.js';
import { CANCELLED } from '../coordination/cancel-requests.js';
import { queueCounts, type QueueVerdict } from './queue-stats.js';

/** Seconds: from a few milliseconds to a day. */
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60];

declare module 'fastify' {
  interface FastifyInstance {
    /** The Prometheus registry GET /metrics serves. */
    prometheus: client.Registry;
  }
}

/**
 * The metrics of GET /metrics, in Prometheus' text format, for a scraper with a bearer token
 * of scope metrics:read (or admin). Queue gauges are read from Redis at each
 * scrape; completed/failed counters and the wait/processing histograms follow
 * the job events this process hears (every job of every queue: each API
 * process reports the whole system, so aggregate with max, not sum); HTTP
 * durations are this process's; plus Node's default process metrics. Labels
 * are queue, type, tenant (active jobs only), method, route and status — never a job id.
 */
export const prometheusPlugin = fp(
  async (app: FastifyInstance) => {
    const registry = new client.Registry();
    client.collectDefaultMetrics({ register: registry });

    const gauge = (name: string, help: string, pick: (c: Awaited<ReturnType<typeof queueCounts>>) => number) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['queue'] as const,
        registers: [registry],
        async collect() {
          try {
            const all = await Promise.all(QUEUE_NAMES.map((q) => queueCounts(app.queues[q], app.redis)));
            all.forEach((c, i) => this.set({ queue: QUEUE_NAMES[i]! }, pick(c)));
          } catch {
            // Redis is away: the scrape still answers, with the process metrics and the last known counts.
          }
        },
      });
    gauge('queue_waiting_jobs', 'Jobs waiting to be processed (including prioritized ones).', (c) => c.waiting);
    gauge('queue_active_jobs', 'Jobs being processed now.', (c) => c.active);
    gauge('queue_delayed_jobs', 'Jobs delayed: scheduled for later, backing off before a retry, or waiting for a tenant slot or a server lock.', (c) => c.delayed);

    // The guide's health indicators, one computation per scrape for all of these gauges.
    let verdicts: { at: number; value: Promise<Record<QueueName, QueueVerdict>> } | undefined;
    const currentVerdicts = () => {
      if (!verdicts || Date.now() - verdicts.at > 1000) verdicts = { at: Date.now(), value: app.stats.queueHealth().then((h) => h.health.queues) };
      return verdicts.value;
    };
    const indicator = (name: string, help: string, pick: (v: QueueVerdict) => number | null) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['queue'] as const,
        registers: [registry],
        async collect() {
          try {
            const all = await currentVerdicts();
            for (const q of QUEUE_NAMES) {
              const value = pick(all[q]);
              if (value === null) this.remove({ queue: q });
              else this.set({ queue: q }, value);
            }
          } catch {
            // Redis is away: the last known values stay.
          }
        },
      });
    new client.Gauge({
      name: 'queue_tenant_active_jobs',
      help: 'Jobs being processed now, per queue and tenant (tenants with none are not listed).',
      labelNames: ['queue', 'tenant'] as const,
      registers: [registry],
      async collect() {
        try {
          const rows = await app.tenants.activeByTenant();
          this.reset();
          for (const r of rows) this.set({ queue: r.queue, tenant: r.tenant }, r.active);
        } catch {
          // Redis is away: the last known values stay.
        }
      },
    });
    indicator('queue_health_status', 'The queue\'s health by the operations guide\'s indicators: 0 healthy, 1 warning, 2 critical.', (v) => ({ healthy: 0, warning: 1, critical: 2 })[v.status]);
    indicator('queue_max_concurrency', 'Summed concurrency of the worker processes serving the queue now.', (v) => v.maxConcurrency);
    indicator('queue_failure_ratio', 'Failed jobs as a share of those finished in the last hour (0..1); absent when none finished.', (v) => (v.failureRatePercent === null ? null : v.failureRatePercent / 100));
    indicator('queue_average_wait_seconds', 'Mean wait before starting of the 50 most recent starts; absent when none in the last hour.', (v) => v.averageWaitSec);

    const completed = new client.Counter({ name: 'queue_completed_total', help: 'Jobs completed since this process started.', labelNames: ['queue', 'type'] as const, registers: [registry] });
    const failed = new client.Counter({ name: 'queue_failed_total', help: 'Job attempts failed since this process started (cancels not included).', labelNames: ['queue', 'type'] as const, registers: [registry] });
    const cancelled = new client.Counter({ name: 'queue_cancelled_total', help: 'Jobs stopped on request while they ran, since this process started.', labelNames: ['queue', 'type'] as const, registers: [registry] });
    const waitTime = new client.Histogram({
      name: 'queue_wait_time_seconds',
      help: 'Time from a job being added to it starting (its last attempt), for jobs that ended.',
      labelNames: ['queue'] as const,
      buckets: JOB_BUCKETS,
      registers: [registry],
    });
    const processingTime = new client.Histogram({
      name: 'queue_processing_time_seconds',
      help: 'Time a job took from its (last) start to its end.',
      labelNames: ['queue', 'type'] as const,
      buckets: JOB_BUCKETS,
      registers: [registry],
    });
    const httpDuration = new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests served by this process, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: HTTP_BUCKETS,
      registers: [registry],
    });

    const onJobEnd = async (e: AnyJobEvent) => {
      if (e.type !== 'completed' && e.type !== 'failed') return;
      const [name, timestamp, processedOn, finishedOn] = await app.redis.hmget(app.queues[e.queue].toKey(e.jobId), 'name', 'timestamp', 'processedOn', 'finishedOn');
      const type = name ?? 'unknown';
      (e.type === 'completed' ? completed : e.failedReason === CANCELLED ? cancelled : failed).inc({ queue: e.queue, type });
      if (timestamp && processedOn) waitTime.observe({ queue: e.queue }, Math.max(0, Number(processedOn) - Number(timestamp)) / 1000);
      if (processedOn && finishedOn) processingTime.observe({ queue: e.queue, type }, Math.max(0, Number(finishedOn) - Number(processedOn)) / 1000);
    };
    // Counters exist from the start (at 0) for each queue, so rate() has a first point.
    for (const queue of QUEUE_NAMES) {
      completed.inc({ queue, type: '' }, 0);
      failed.inc({ queue, type: '' }, 0);
      cancelled.inc({ queue, type: '' }, 0);
    }
    await app.events.watchAll((e) => void onJobEnd(e).catch(() => {}));

    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url;
      if (route && route !== '/metrics') httpDuration.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
      done();
    });

    app.decorate('prometheus', registry);
  },
  { name: 'prometheus', dependencies: ['services'] },
);
