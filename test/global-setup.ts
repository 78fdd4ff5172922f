import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedRedis, type EmbeddedRedis } from '../src/redis/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let redis: EmbeddedRedis | undefined;
let dir: string | undefined;

/**
 * The suite starts its own throwaway redis-server and never touches another
 * Redis, unless TEST_REDIS_URL names one on purpose.
 */
export async function setup(project: TestProject) {
  if (process.env.TEST_REDIS_URL) {
    project.provide('redisUrl', process.env.TEST_REDIS_URL);
    return;
  }
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobs-api-test-redis-'));
  redis = await startEmbeddedRedis(dir);
  project.provide('redisUrl', redis.url);
}

export async function teardown() {
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}
