import { Job } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { fullJitterMs, retryCeilingMs, RETRY_BACKOFF_TYPE } from '../../src/jobs/index.js';
import { retryDelay } from '../../workers/create-workers.js';
import { auth, makeApp, waitForJob } from '../helpers.js';

const OPS = auth({ sub: 'alice', tenant: 'ops', scope: 'jobs:read jobs:write' });
const ADMIN = auth({ sub: 'root', tenant: 'default', scope: 'admin' });

describe('retry backoff: exponential ceilings, full jitter, a cap', () => {
  it('doubles the ceiling per retry from the first one, up to the cap', () => {
    expect([1, 2, 3, 4].map((n) => retryCeilingMs(n, 5000, 300_000))).toEqual([5000, 10_000, 20_000, 40_000]);
    expect(retryCeilingMs(8, 5000, 300_000)).toBe(300_000);
    expect(retryCeilingMs(500, 5000, 300_000)).toBe(300_000);
  });

  it('waits a random time below the ceiling (0 included), never above it', () => {
    expect(fullJitterMs(2, 5000, 300_000, () => 0)).toBe(0);
    expect(fullJitterMs(2, 5000, 300_000, () => 0.999_999)).toBe(9999);
    const waits = Array.from({ length: 200 }, () => retryDelay(3, RETRY_BACKOFF_TYPE, undefined, { opts: { backoff: { type: RETRY_BACKOFF_TYPE, delay: 1000, maxDelay: 3000 } } } as never));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...waits)).toBeLessThan(3000);
    // Jittered: 200 draws below 3000 ms are not all the same.
    expect(new Set(waits).size).toBeGreaterThan(50);
  });

  it('refuses a cap below the first ceiling, and a concurrency that is not queue=n, naming the setting', () => {
    expect(() => loadConfig({ RETRY_BACKOFF_MS: '10000', RETRY_BACKOFF_MAX_MS: '5000' })).toThrow(/RETRY_BACKOFF_MAX_MS: 5000 is below RETRY_BACKOFF_MS/);
    expect(() => loadConfig({ JOB_ATTEMPTS: '0' })).toThrow(/JOB_ATTEMPTS/);
    expect(() => loadConfig({ COMPLETED_RETENTION_COUNT: 'lots' })).toThrow(/COMPLETED_RETENTION_COUNT/);
    for (const bad of ['scan=0', 'scan=1001', 'mail=2', 'scan:2', 'scan=two']) {
      expect(() => loadConfig({ QUEUE_CONCURRENCY: bad })).toThrow(ConfigError);
      expect(() => loadConfig({ QUEUE_CONCURRENCY: bad })).toThrow(/QUEUE_CONCURRENCY/);
    }
    const config = loadConfig({ QUEUE_CONCURRENCY: 'scan=12, update=3', JOB_ATTEMPTS: '4', FAILED_RETENTION_SEC: '3600' });
    expect(config.queueConcurrency).toEqual({ backup: 2, scan: 12, update: 3 });
    expect(config.jobDefaults).toMatchObject({ attempts: 4, backoffMs: 5000, backoffMaxMs: 300_000, failedAgeSec: 3600 });
  });
});

describe('retry policy and queue settings from the environment, on real jobs', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = await makeApp({
      env: { JOB_ATTEMPTS: '2', RETRY_BACKOFF_MS: '100', RETRY_BACKOFF_MAX_MS: '200', QUEUE_CONCURRENCY: 'update=3', COMPLETED_RETENTION_COUNT: '50' },
      servers: [{ id: 'web', tenant: 'ops', host: '127.0.0.1', update: { command: [process.execPath, '-e', 'process.exit(3)'] } }],
    });
  });
  afterAll(async () => {
    await app?.close();
  });

  const submit = async (options?: object) => {
    const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: OPS, payload: { type: 'update:server', data: { serverId: 'web' }, ...(options ? { options } : {}) } });
    expect(res.statusCode, res.body).toBe(202);
    return res.json().data.jobId as string;
  };

  it('runs a job JOB_ATTEMPTS times, its retries waiting per RETRY_BACKOFF_MS and RETRY_BACKOFF_MAX_MS', async () => {
    const id = await submit();
    const failed = await waitForJob(app, id, ['failed']);
    expect(failed).toMatchObject({ attempts: 2, maxAttempts: 2 });
    const job = await Job.fromId(app.queues.update, id);
    expect(job!.opts.backoff).toEqual({ type: RETRY_BACKOFF_TYPE, delay: 100, maxDelay: 200 });
    expect(job!.opts.removeOnComplete).toEqual({ age: 7 * 24 * 3600, count: 50 });
  });

  it('takes a job\'s own attempts and backoff, within bounds', async () => {
    const id = await submit({ attempts: 3, backoffMs: 150, backoffMaxMs: 300 });
    expect(await waitForJob(app, id, ['failed'])).toMatchObject({ attempts: 3, maxAttempts: 3 });
    expect((await Job.fromId(app.queues.update, id))!.opts.backoff).toEqual({ type: RETRY_BACKOFF_TYPE, delay: 150, maxDelay: 300 });
    // Only a first ceiling: the cap rises to it when it is above the default cap.
    const alone = await submit({ attempts: 1, backoffMs: 60_000 });
    expect((await Job.fromId(app.queues.update, alone))!.opts.backoff).toEqual({ type: RETRY_BACKOFF_TYPE, delay: 60_000, maxDelay: 60_000 });
  });

  it('answers 400 for a backoff out of bounds or a cap below the first ceiling', async () => {
    for (const [options, field] of [
      [{ backoffMs: 50 }, 'backoffMs'],
      [{ backoffMs: 5000, backoffMaxMs: 1000 }, 'backoffMaxMs'],
      [{ backoffMaxMs: 100_000_000 }, 'backoffMaxMs'],
      [{ attempts: 11 }, 'attempts'],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: '/api/jobs', headers: OPS, payload: { type: 'update:server', data: { serverId: 'web' }, options } });
      expect(res.statusCode, JSON.stringify(options)).toBe(400);
      expect(res.json()).toMatchObject({ success: false, error: { code: 'VALIDATION_ERROR' } });
      expect(res.body).toContain(field);
    }
  });

  it('runs QUEUE_CONCURRENCY jobs of a queue at once, and says so', async () => {
    const status = await app.inject({ url: '/api/queues/update', headers: ADMIN });
    expect(status.json().data).toMatchObject({ queue: 'update', concurrency: 3 });
    expect(app.workers!.update.concurrency).toBe(3);
    expect(app.workers!.scan.concurrency).toBe(5);
  });
});
