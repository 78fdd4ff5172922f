import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, waitForJob } from '../helpers.js';

const H = auth({ tenant: 'ops' });

describe('one update at a time per server, across processes', () => {
  // Four processes with workers on one Redis: a tenant may run two updates at once (half of
  // the queue's capacity of four), so only the server lock keeps two of one server apart.
  let one: FastifyInstance;
  let others: FastifyInstance[] = [];

  beforeAll(async () => {
    const env = { QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}` };
    // The command says when it really starts and ends: that is the work that must not overlap.
    const command = [process.execPath, '-e', "console.log('start ' + Date.now()); setTimeout(() => console.log('end ' + Date.now()), 800)"];
    const servers = [
      { id: 'db', tenant: 'ops', host: '127.0.0.1', update: { command, timeoutSec: 30 } },
      // Another tenant's server: it does not compete with ops for ops' share of the queue.
      { id: 'cache', tenant: 'other', host: '127.0.0.1', update: { command, timeoutSec: 30 } },
    ];
    one = await makeApp({ env, servers });
    others = await Promise.all([1, 2, 3].map(() => makeApp({ env, servers })));
    // All four worker processes have reported in (the tenant cap follows the capacity they add up to).
    const deadline = Date.now() + 10_000;
    while ((await one.inject({ url: '/api/workers', headers: auth({ scope: 'admin' }) })).json().data.queues.update.online < 4) {
      if (Date.now() > deadline) throw new Error('the four worker processes did not report in');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(async () => {
    await one.close();
    await Promise.all(others.map((a) => a.close()));
  });

  const update = async (serverId: string, headers = H) => {
    const res = await one.inject({ method: 'POST', url: `/api/servers/${serverId}/update`, headers });
    expect(res.statusCode).toBe(202);
    return res.json().data.jobId as string;
  };

  it('a second update of the same server waits for the first; another server\'s update does not', async () => {
    const ids = [await update('db'), await update('db'), await update('cache', auth({ tenant: 'other' }))];
    const [a, b, c] = await Promise.all(ids.map((id) => waitForJob(one, id, ['completed', 'failed'], 30_000)));
    expect([a, b, c].map((j) => j!.state)).toEqual(['completed', 'completed', 'completed']);
    expect([a, b, c].map((j) => j!.attempts)).toEqual([1, 1, 1]);

    const logsOf = async (j: typeof a, headers = H) => (await one.inject({ url: `/api/jobs/${j!.id}/logs`, headers })).json().data.lines as string[];
    /** When the job's command started and ended, as it printed them. */
    const work = async (j: typeof a, headers = H) => {
      const lines = await logsOf(j, headers);
      const at = (word: string) => Number(lines.find((l) => l.startsWith(`${word} `))!.slice(word.length + 1));
      return [at('start'), at('end')] as const;
    };
    const [first, second] = [await work(a), await work(b)].sort((x, y) => x[0] - y[0]);
    expect(second![0]).toBeGreaterThanOrEqual(first![1]);

    // The one that waited says for whom; the other server's update ran alongside.
    // (Each worker process that picks the waiting job up says it once.)
    const logs = await Promise.all([a, b].map((j) => logsOf(j)));
    const waitedIn = logs.map((lines) => lines.filter((l) => l.startsWith('[jobs-api] waiting: job update_') && l.includes('holds the update lock of server db')).length);
    expect(waitedIn.filter((n) => n > 0), JSON.stringify(logs)).toHaveLength(1);
    const cacheWork = await work(c, auth({ tenant: 'other' }));
    const overlapsDb = cacheWork[0] < first![1] || cacheWork[0] < second![1];
    expect(overlapsDb).toBe(true);
  });
});
