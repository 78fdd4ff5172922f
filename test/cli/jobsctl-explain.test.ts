import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobsctlAgainst } from './jobsctl-harness.js';
import { ADMIN, makeApp, token, waitForJob } from '../helpers.js';


describe('jobsctl job:explain against a listening server', { timeout: 90_000 }, () => {
  let app: FastifyInstance;
  let url: string;
  const admin = token(ADMIN);
  const { run, call } = jobsctlAgainst({ app: () => app, url: () => url, token: admin });

  beforeAll(async () => {
    app = await makeApp({ servers: [{ id: 'web', tenant: 'default', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } }] });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());


  it('one line per reason, --json, exit 0 whether the job is held or not; an unknown job is exit 6', async () => {
    await call('POST', '/api/queues/scan/pause');
    let second: string;
    try {
      await call('POST', '/api/servers/web/scan', { scan_type: 'quick' });
      second = (await call('POST', '/api/servers/web/scan', { scan_type: 'quick' })).jobId as string;
      const [human, json] = await Promise.all([run(['job:explain', second]), run(['--json', 'job:explain', second])]);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout.trimEnd().split('\n')).toEqual([
        `${second}  waiting  held: it is waiting and not running`,
        '  QUEUE_PAUSED     the scan queue is paused: workers start none of its jobs until an admin resumes it (POST /api/queues/scan/resume)',
        '  WAITING_IN_LINE  it is number 2 of the 2 waiting scan jobs of priority 3 (normal): 1 job of the queue starts before it',
      ]);
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({
        jobId: second,
        state: 'waiting',
        held: true,
        reasons: [{ code: 'QUEUE_PAUSED', queue: 'scan' }, { code: 'WAITING_IN_LINE', position: 2, samePriority: 2, ahead: 1 }],
      });
    } finally {
      await call('POST', '/api/queues/scan/resume');
    }

    await waitForJob(app, second);
    const done = await run(['job:explain', second]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`^${second}  completed  not held: it completed at \\S+: nothing holds it\\n$`));

    const unknown = await run(['job:explain', 'scan_doesnotexist0000000000']);
    expect(unknown.code).toBe(6);
    expect(unknown.stderr).toContain('JOB_NOT_FOUND');
  });
});
