import { defineConfig } from 'vitest/config';

/** Tests that start Redis topologies of their own (master + replica + Sentinels): run alone with `npx vitest run --project topologies`. */
const TOPOLOGIES = ['test/redis/sentinel*.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/cleanup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'product', include: ['test/**/*.test.ts'], exclude: TOPOLOGIES } },
      { extends: true, test: { name: 'topologies', include: TOPOLOGIES } },
    ],
  },
});
