import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { QUEUE_NAMES } from '../../src/jobs/index.js';
import { redisKeys } from '../../src/redis/keys.js';
import { startEntry } from '../processes.js';
import { tmpDir } from '../tmp.js';
import { freePort, startPlainRedis } from '../topologies.js';

// Runs in the `cluster` project only (vitest.config.ts): the Cluster of test/global-setup-cluster.ts.
describe('Redis Cluster: how the product finds and uses it', () => {
  const nodes = inject('redisCluster')!;
  const start = async (entry: string, env: Record<string, string>) => {
    const run = startEntry(entry, { DATA_DIR: tmpDir('cluster-bad'), JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'silent', ...env });
    return { code: await run.exited, out: run.out() };
  };
  const plain = startPlainRedis();
  afterAll(async () => (await plain).stop());

  it('spreads the queues over the nodes: each queue and its product keys on one node, queues on different ones', async () => {
    const [host, port] = nodes.split(',')[0]!.split(':') as [string, string];
    const node = new Redis({ host, port: Number(port) });
    try {
      const owner = async (key: string) => {
        const slot = Number(await node.call('CLUSTER', 'KEYSLOT', key));
        const ranges = (await node.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
        const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
        return range[2][1];
      };
      const k = redisKeys('bull');
      const homes = new Set<number>();
      for (const q of QUEUE_NAMES) {
        const home = await owner(`${k.queue(q)}wait`);
        homes.add(home);
        for (const key of [k.index.all(q), k.record(q, 'r'), k.serverLock(q, 's'), k.tenantSlots(q, 't'), k.cancelRequest(`${q}_AAAAAAAAAAAAAAAAAAAAAA`)]) {
          expect(await owner(key), key).toBe(home);
        }
      }
      expect(homes.size).toBeGreaterThan(1);
    } finally {
      node.disconnect();
    }
  });

  it('refuses to start, naming the setting (exit 2), on a node without cluster mode; exit 1 when no node answers', async () => {
    const { port } = await plain;
    for (const entry of ['src/main.ts', 'workers/main.ts']) {
      const notCluster = await start(entry, { REDIS_CLUSTER_NODES: `127.0.0.1:${port}` });
      expect(notCluster.code, notCluster.out).toBe(2);
      expect(notCluster.out).toContain(`REDIS_CLUSTER_NODES: 127.0.0.1:${port} is a Redis without cluster mode`);
    }
    const garbled = await start('src/main.ts', { REDIS_CLUSTER_NODES: `${nodes},node-four` });
    expect(garbled.code, garbled.out).toBe(2);
    expect(garbled.out).toContain('REDIS_CLUSTER_NODES: "node-four" is not host:port');
    const nobody = await start('workers/main.ts', { REDIS_CLUSTER_NODES: `127.0.0.1:${await freePort()}` });
    expect(nobody.code, nobody.out).toBe(1);
    expect(nobody.out).toContain('REDIS_CLUSTER_NODES: none of');
  }, 60_000);
});
