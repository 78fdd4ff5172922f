import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, redisEnv, TEST_SECRET, tmpDir, waitForJob } from '../helpers.js';

const H = auth({ tenant: 'ops' });
const node = process.execPath;

describe('cancelling a job whose worker process died', () => {
  const prefix = `t${randomBytes(6).toString('hex')}`;
  const dir = tmpDir('crash');
  const servers = [
    {
      id: 'long',
      tenant: 'ops',
      host: '127.0.0.1',
      update: { command: [node, '-e', "console.log('PID ' + process.pid); setInterval(() => {}, 1000)"], timeoutSec: 600 },
    },
  ];
  let api: FastifyInstance;
  let worker: ChildProcess;
  let commandPid = 0;

  beforeAll(async () => {
    writeFileSync(path.join(dir, 'servers.json'), JSON.stringify({ servers }));
    // The worker is a real process of its own (the product as `npm start` runs it), so it can die for real.
    worker = spawn(node, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, ...redisEnv(), JWT_SECRET: TEST_SECRET, QUEUE_PREFIX: prefix, DATA_DIR: dir, SERVERS_FILE: path.join(dir, 'servers.json'), PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', WORKER_LOCK_MS: '2000' },
      stdio: 'ignore',
    });
    api = await makeApp({ env: { QUEUE_PREFIX: prefix, WORKERS: 'off' }, servers });
  });
  afterAll(async () => {
    worker.kill('SIGKILL');
    if (commandPid) {
      try {
        process.kill(commandPid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await api.close();
  });

  it('is honoured when another worker picks the job up again: it fails as cancelled without running', async () => {
    const res = await api.inject({ method: 'POST', url: '/api/servers/long/update', headers: H, payload: { options: { attempts: 3 } } });
    const jobId = res.json().data.jobId as string;
    // Running in the worker process: its command printed its pid.
    const deadline = Date.now() + 30_000;
    while (!commandPid) {
      if (Date.now() > deadline) throw new Error('the worker process did not start the job');
      const line = ((await api.inject({ url: `/api/jobs/${jobId}/logs`, headers: H })).json().data.lines as string[]).find((l) => l.startsWith('PID '));
      if (line) commandPid = Number(line.slice(4));
      else await new Promise((r) => setTimeout(r, 100));
    }

    // The worker process dies without a word (its command lingers, as an orphan would).
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));

    // Nobody runs the job now: the cancel is requested and waits; the answer says it is still stopping.
    const cancel = await api.inject({ method: 'POST', url: `/api/jobs/${jobId}/cancel`, headers: H });
    expect(cancel.statusCode).toBe(202);
    expect(cancel.json().data).toMatchObject({ outcome: 'cancelling', job: { state: 'active' } });

    // A new worker process finds the job stalled (its lock expires within WORKER_LOCK_MS), takes it up and fails it as cancelled.
    const next = await makeApp({ env: { QUEUE_PREFIX: prefix, WORKER_LOCK_MS: '2000' }, servers });
    try {
      const done = await waitForJob(next, jobId, ['completed', 'failed', 'cancelled'], 90_000);
      expect(done).toMatchObject({ state: 'cancelled', failedReason: 'cancelled' });
      const log = (await api.inject({ url: `/api/jobs/${jobId}/logs`, headers: H })).json().data.lines as string[];
      // The update command ran once, in the process that died; the new worker did not start it again.
      expect(log.filter((l) => l.startsWith('PID '))).toHaveLength(1);
    } finally {
      await next.close();
    }
  }, 120_000);
});
