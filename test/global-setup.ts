import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedRedis } from '../src/redis/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/**
 * The suite starts its own throwaway redis-server and never touches another
 * Redis, unless TEST_REDIS_URL names one on purpose. Vitest runs this once per
 * project: each run gets its own Redis and stops it (the teardown returned).
 */
export async function setup(project: TestProject) {
  // The tests that run `npm start` / `npm run worker` as a user does run the compiled code: build it once, here.
  execFileSync(process.execPath, ['bin/build.js', '--if-stale'], { stdio: 'inherit' });
  if (process.env.TEST_REDIS_URL) {
    project.provide('redisUrl', process.env.TEST_REDIS_URL);
    return;
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'jobs-api-test-redis-'));
  const redis = await startEmbeddedRedis(dir);
  project.provide('redisUrl', redis.url);
  return async () => {
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
