import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp } from '../helpers.js';
import { startEntry } from '../processes.js';
import { freePort } from '../topologies.js';
import { tmpDir } from '../tmp.js';
import { startSentinelSetup, type SentinelSetup } from '../topologies.js';

const H = auth({ tenant: 'ops' });
const servers = [{ id: 'web', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }];

describe('Redis Sentinel: a master, a replica and three Sentinels', () => {
  let setup: SentinelSetup;
  let app: FastifyInstance;

  beforeAll(async () => {
    setup = await startSentinelSetup();
    // REDIS_URL emptied: the test Redis must not be used, the Sentinels say where the master is. A short lock:
    // a job whose completion the old master refused (READONLY) runs again within seconds, not 30 s.
    app = await makeApp({ env: { REDIS_URL: '', REDIS_SENTINELS: setup.sentinels, REDIS_SENTINEL_NAME: setup.name, WORKER_LOCK_MS: '2000' }, servers });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await setup?.stop();
  });

  const enqueue = () => app.inject({ method: 'POST', url: '/api/servers/web/scan', headers: H, payload: { scan_type: 'quick' } });
  const stateOf = async (id: string) => (await app.inject({ method: 'GET', url: `/api/jobs/${id}`, headers: H })).json().data?.state as string | undefined;

  it('runs jobs on the master the Sentinels name, each 202 confirmed by the replica', async () => {
    expect(app.config.enqueueReplicas).toBe(1);
    const res = await enqueue();
    expect(res.statusCode).toBe(202);
    const id = res.json().data.jobId as string;
    for (let i = 0; i < 100 && (await stateOf(id)) !== 'completed'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await stateOf(id)).toBe('completed');
  });

  it('through a failover: 202 or 503 with Retry-After (never a 500), no 202 lost, then back by itself; the workers resume', async () => {
    const accepted: string[] = [];
    const refused: Array<{ status: number; retryAfter: string | string[] | number | undefined; code: string }> = [];
    let failedOver = false;
    let afterFailover = 0;
    const failover = setup.failover().then((port) => {
      failedOver = true;
      return port;
    });
    // Two callers enqueue without pause until 30 enqueues have been answered 202 after the Sentinels named the new master.
    const deadline = Date.now() + 45_000;
    const caller = async () => {
      while (afterFailover < 30 && Date.now() < deadline) {
        const res = await enqueue();
        if (res.statusCode === 202) {
          accepted.push(res.json().data.jobId as string);
          if (failedOver) afterFailover++;
        } else {
          refused.push({ status: res.statusCode, retryAfter: res.headers['retry-after'], code: res.json().error?.code as string });
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    await Promise.all([caller(), caller()]);
    const newMaster = await failover;
    expect(afterFailover, `enqueues did not recover after the failover (refusals: ${JSON.stringify(refused.slice(-3))})`).toBeGreaterThanOrEqual(30);
    expect(newMaster).not.toBe(0);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.retryAfter).toBeDefined();
    }

    // Every job answered 202 is on the new master and runs there.
    const pending = new Set(accepted);
    const until = Date.now() + 60_000;
    while (pending.size > 0 && Date.now() < until) {
      for (const id of [...pending]) if ((await stateOf(id)) === 'completed') pending.delete(id);
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 250));
    }
    expect([...pending], `${pending.size} of ${accepted.length} accepted jobs did not complete after the failover`).toEqual([]);
    expect((await app.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
  }, 120_000);

  it('refuses to start, naming the setting, on a master name no Sentinel knows or a list that does not parse; says so when none answers', async () => {
    const start = async (entry: string, env: Record<string, string>) => {
      const run = startEntry(entry, { DATA_DIR: tmpDir('sentinel-bad'), JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'silent', ...env });
      return { code: await run.exited, out: run.out() };
    };
    for (const entry of ['src/main.ts', 'workers/main.ts']) {
      const unknown = await start(entry, { REDIS_SENTINELS: setup.sentinels, REDIS_SENTINEL_NAME: 'nosuchmaster' });
      expect(unknown.code, unknown.out).toBe(2);
      expect(unknown.out).toContain('REDIS_SENTINEL_NAME: no Sentinel of');
      expect(unknown.out).toContain('"nosuchmaster"');

      const garbled = await start(entry, { REDIS_SENTINELS: '127.0.0.1:26379,sentinel-two' });
      expect(garbled.code, garbled.out).toBe(2);
      expect(garbled.out).toContain('REDIS_SENTINELS: "sentinel-two" is not host:port');
    }
    const nobody = await start('src/main.ts', { REDIS_SENTINELS: `127.0.0.1:${await freePort()}` });
    expect(nobody.code, nobody.out).toBe(1);
    expect(nobody.out).toContain('REDIS_SENTINELS: none of');
  }, 60_000);
});
