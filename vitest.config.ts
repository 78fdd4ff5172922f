import { defineConfig } from 'vitest/config';

/**
 * Tests that start Redis topologies of their own (master + replica + Sentinels, a three-master Cluster): run
 * alone with `npx vitest run --project topologies`. Their shared scenario, test/redis/scale-out-scenario.ts, is
 * not a test file.
 */
const TOPOLOGIES = ['test/redis/sentinel*.test.ts', 'test/redis/cluster-processes.test.ts'];

/** Tests that need the Cluster of the `cluster` project. */
const CLUSTER_ONLY = ['test/redis/cluster-setup.test.ts'];

/** Tests of the API that also run on Redis Cluster: every route and coordination path, on keys spread over three nodes. */
const ON_CLUSTER = [
  ...CLUSTER_ONLY,
  'test/routes/jobs.test.ts',
  'test/services/*.test.ts',
  'test/coordination/*.test.ts',
  'test/http/{idempotency,job-stream,rate-limit}.test.ts',
  'test/store/{maintenance,list-filters}.test.ts',
  'test/workers/{backup,workers,progress}.test.ts',
  'test/backups/*.test.ts',
  'test/observability/*.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/cleanup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Most of a test's time is spent waiting on Redis, child processes and jobs: three files at once keep two
    // cores busy (vitest's default on two cores is one file at a time).
    maxWorkers: 3,
    projects: [
      { extends: true, test: { name: 'product', include: ['test/**/*.test.ts'], exclude: [...TOPOLOGIES, ...CLUSTER_ONLY] } },
      { extends: true, test: { name: 'topologies', include: TOPOLOGIES } },
      // The API's own tests again, on a three-master Redis Cluster: `npx vitest run --project cluster`.
      { extends: true, test: { name: 'cluster', include: ON_CLUSTER, globalSetup: ['test/global-setup-cluster.ts'] } },
    ],
  },
});
