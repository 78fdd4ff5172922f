import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, waitForJob } from '../helpers.js';

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The text exposition format, as a scraper reads it. */
function parse(text: string): { help: Map<string, number>; type: Map<string, string>; typeCount: Map<string, number>; samples: Sample[] } {
  const help = new Map<string, number>();
  const type = new Map<string, string>();
  const typeCount = new Map<string, number>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'HELP') help.set(meta[2]!, (help.get(meta[2]!) ?? 0) + 1);
      else {
        type.set(meta[2]!, meta[3]!);
        typeCount.set(meta[2]!, (typeCount.get(meta[2]!) ?? 0) + 1);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { help, type, typeCount, samples };
}

const value = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;

describe('GET /metrics for Prometheus', () => {
  let app: FastifyInstance;
  const scraper = auth({ sub: 'prometheus', scope: 'metrics:read' });

  beforeAll(async () => {
    app = await makeApp({ servers: [{ id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }] });
  });
  afterAll(() => app.close());

  const scrape = async () => {
    const res = await app.inject({ url: '/metrics', headers: scraper });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(res.body);
  };

  it('needs a token with metrics:read or admin', async () => {
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/metrics', headers: auth({ tenant: 'ops' }) })).statusCode).toBe(403);
    expect((await app.inject({ url: '/metrics', headers: auth({ scope: 'admin' }) })).statusCode).toBe(200);
  });

  it('names from the operations guide, one HELP and TYPE each, and values that move as jobs run', async () => {
    const before = await scrape();
    const expected: Array<[string, string]> = [
      ['queue_waiting_jobs', 'gauge'],
      ['queue_active_jobs', 'gauge'],
      ['queue_delayed_jobs', 'gauge'],
      ['queue_completed_total', 'counter'],
      ['queue_failed_total', 'counter'],
      ['queue_wait_time_seconds', 'histogram'],
      ['queue_processing_time_seconds', 'histogram'],
      ['http_request_duration_seconds', 'histogram'],
      ['process_cpu_seconds_total', 'counter'],
      ['queue_health_status', 'gauge'],
      ['queue_max_concurrency', 'gauge'],
      ['queue_failure_ratio', 'gauge'],
      ['queue_average_wait_seconds', 'gauge'],
    ];
    for (const [name, kind] of expected) {
      expect(before.type.get(name), name).toBe(kind);
    }
    for (const [name, n] of before.help) expect(n, name).toBe(1);
    for (const [name, n] of before.typeCount) expect(n, name).toBe(1);
    expect(value(before.samples, 'queue_waiting_jobs', { queue: 'scan' })).toBe(0);

    // Paused, a job waits: the gauge says so; resumed, it completes: the counters and histograms move.
    await app.queues.scan.pause();
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: auth({ tenant: 'ops' }), payload: { type: 'scan:quick', data: { serverId: 'web' } } });
    const id = res.json().data.jobId;
    expect(value((await scrape()).samples, 'queue_waiting_jobs', { queue: 'scan' })).toBe(1);
    await app.queues.scan.resume();
    await waitForJob(app, id);
    await new Promise((r) => setTimeout(r, 300));
    const after = await scrape();
    expect(value(after.samples, 'queue_waiting_jobs', { queue: 'scan' })).toBe(0);
    expect(value(after.samples, 'queue_completed_total', { queue: 'scan', type: 'scan:quick' })).toBe(value(before.samples, 'queue_completed_total', { queue: 'scan', type: 'scan:quick' }) + 1);
    expect(value(after.samples, 'queue_processing_time_seconds_count', { queue: 'scan', type: 'scan:quick' })).toBe(1);
    expect(value(after.samples, 'queue_wait_time_seconds_count', { queue: 'scan' })).toBe(1);
    expect(value(after.samples, 'http_request_duration_seconds_count', { method: 'POST', route: '/api/jobs', status: '202' })).toBe(1);
    // The guide's indicators: the scan that ran is counted, none failed, a worker serves the queue.
    expect(value(after.samples, 'queue_failure_ratio', { queue: 'scan' })).toBe(0);
    expect(value(after.samples, 'queue_health_status', { queue: 'scan' })).toBe(0);
    expect(value(after.samples, 'queue_max_concurrency', { queue: 'scan' })).toBeGreaterThan(0);
    expect(value(after.samples, 'queue_average_wait_seconds', { queue: 'scan' })).toBeGreaterThanOrEqual(0);

    // Labels never carry a job id.
    for (const s of after.samples) for (const v of Object.values(s.labels)) expect(v).not.toMatch(/_[A-Za-z0-9_-]{22}$/);
  });
});
