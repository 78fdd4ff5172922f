import { Redis } from 'ioredis';
import { startClusterSetup } from '../topologies.js';
import { describeScaleOut } from './scale-out-scenario.js';

/** The scale-out scenario on a Redis Cluster of three masters that the suite starts itself. */
describeScaleOut('two API and two worker processes on a Redis Cluster', async () => {
  const setup = await startClusterSetup();
  return {
    env: { REDIS_CLUSTER_NODES: setup.nodes },
    // Every node's share: the keys of the whole cluster.
    async keys() {
      let total = 0;
      for (const port of setup.ports) {
        const node = new Redis({ port, host: '127.0.0.1' });
        try {
          total += await node.dbsize();
        } finally {
          node.disconnect();
        }
      }
      return total;
    },
    stop: () => setup.stop(),
  };
});
