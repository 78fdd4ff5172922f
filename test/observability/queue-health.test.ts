import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../../src/jobs/index.js';
import { assessQueue, overallHealth, type QueueIndicators } from '../../src/observability/queue-stats.js';
import { auth, makeApp, waitForJob } from '../helpers.js';

const calm: QueueIndicators = {
  waiting: 0,
  active: 0,
  maxConcurrency: 10,
  activePercent: 0,
  completedLastHour: 100,
  failedLastHour: 0,
  failureRatePercent: 0,
  averageWaitSec: 1,
};

describe('queue health by the operations guide\'s indicators', () => {
  it('puts each indicator at healthy, warning or critical at the guide\'s thresholds, and says why', () => {
    expect(assessQueue('scan', calm)).toMatchObject({ status: 'healthy', reasons: [] });
    for (const [change, status, reason] of [
      [{ active: 8, activePercent: 80 }, 'warning', 'scan: 8 active of 10 slots, 80% (warning: 80 or more)'],
      [{ active: 10, activePercent: 100 }, 'critical', 'scan: 10 active of 10 slots, 100% (critical: above 95)'],
      [{ waiting: 999 }, 'healthy', undefined],
      [{ waiting: 1000 }, 'warning', 'scan: 1000 jobs waiting (warning: 1000 or more)'],
      [{ waiting: 5001 }, 'critical', 'scan: 5001 jobs waiting (critical: above 5000)'],
      [{ failureRatePercent: 4.9 }, 'healthy', undefined],
      [{ failureRatePercent: 10 }, 'warning', 'scan: 10% of the jobs that finished in the last hour failed (warning: 5 or more)'],
      [{ failureRatePercent: 10.1 }, 'critical', 'scan: 10.1% of the jobs that finished in the last hour failed (critical: above 10)'],
      [{ averageWaitSec: 45 }, 'warning', 'scan: jobs waited 45 s on average before starting (warning: 30 or more)'],
      [{ averageWaitSec: 121 }, 'critical', 'scan: jobs waited 121 s on average before starting (critical: above 120)'],
      [{ waiting: 3, maxConcurrency: 0, activePercent: null }, 'critical', 'scan: 3 jobs waiting and no worker process serves the queue (critical)'],
    ] as const) {
      const v = assessQueue('scan', { ...calm, ...change });
      expect(v.status, JSON.stringify(change)).toBe(status);
      expect(v.reasons).toEqual(reason ? [reason] : []);
    }
    // The worst queue decides, in the contract's words.
    const warn = assessQueue('scan', { ...calm, waiting: 2000 });
    const crit = assessQueue('update', { ...calm, failureRatePercent: 50 });
    expect(overallHealth([assessQueue('backup', calm), warn]).status).toBe('degraded');
    expect(overallHealth([warn, crit])).toEqual({ status: 'unhealthy', message: `${warn.reasons[0]}; ${crit.reasons[0]}` });
  });

  describe('measured on real jobs', () => {
    let app: FastifyInstance;
    const node = process.execPath;
    beforeAll(async () => {
      app = await makeApp({
        servers: [
          { id: 'ok', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'process.exit(0)'] } },
          { id: 'bad', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', 'process.exit(1)'] } },
        ],
      });
    });
    afterAll(() => app.close());

    it('reads failures of the last hour, the wait before starting and the workers\' concurrency from Redis', async () => {
      const H = auth({ tenant: 'ops' });
      const ids: string[] = [];
      for (const serverId of ['ok', 'ok', 'ok', 'bad']) {
        const res = await app.inject({ method: 'POST', url: `/api/servers/${serverId}/update`, headers: H, payload: { options: { attempts: 1 } } });
        ids.push(res.json().data.jobId);
      }
      for (const id of ids) await waitForJob(app, id);
      const res = await app.inject({ url: '/api/metrics/queues', headers: auth({ scope: 'metrics:read' }) });
      const update = res.json().data.health.queues.update;
      expect(update).toMatchObject({ completedLastHour: 3, failedLastHour: 1, failureRatePercent: 25, status: 'critical', active: 0, activePercent: 0 });
      expect(update.maxConcurrency).toBe(QUEUES.update.concurrency);
      expect(update.averageWaitSec).toBeGreaterThanOrEqual(0);
      expect(update.averageWaitSec).toBeLessThan(30);
      expect(update.reasons).toEqual(['update: 25% of the jobs that finished in the last hour failed (critical: above 10)']);
      expect(res.json().data.health.status).toBe('unhealthy');
    });
  });
});
