import { Redis } from 'ioredis';
import { startSentinelSetup } from '../topologies.js';
import { describeScaleOut } from './scale-out-scenario.js';

/** The scale-out scenario on a master + replica + three Sentinels that the suite starts itself. */
describeScaleOut('two API and two worker processes behind Redis Sentinel', async () => {
  const setup = await startSentinelSetup();
  return {
    env: { REDIS_SENTINELS: setup.sentinels, REDIS_SENTINEL_NAME: setup.name },
    async keys() {
      const master = new Redis({ port: await setup.masterPort(), host: '127.0.0.1' });
      try {
        return await master.dbsize();
      } finally {
        master.disconnect();
      }
    },
    stop: () => setup.stop(),
  };
});
