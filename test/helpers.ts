import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { inject } from 'vitest';
import { buildApp } from '../src/app.js';
import { signToken } from '../src/http/auth.js';
import { loadConfig, type Config } from '../src/config.js';
import { parseInventory, type Inventory } from '../src/inventory.js';
import { tmpDir } from './tmp.js';
import { JOB_RESULT_SCHEMAS } from '../src/jobs/index.js';
import type { JobView } from '../src/store/job-store.js';

export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256!!';

export { tmpDir } from './tmp.js';

/** Where the product under test finds Redis: the suite's Redis, or in the `cluster` project its Redis Cluster (test/global-setup-cluster.ts). */
export function redisEnv(): { REDIS_URL: string } | { REDIS_CLUSTER_NODES: string } {
  const cluster = inject('redisCluster');
  return cluster ? { REDIS_CLUSTER_NODES: cluster } : { REDIS_URL: inject('redisUrl') };
}

export function testConfig(env: Record<string, string> = {}): Config {
  const dataDir = tmpDir('data');
  return loadConfig({
    ...redisEnv(),
    JWT_SECRET: TEST_SECRET,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    // A queue prefix per app keeps test files apart on the shared Redis.
    QUEUE_PREFIX: `t${randomBytes(6).toString('hex')}`,
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...env,
  });
}

export function inventoryOf(servers: unknown[], baseDir = process.cwd()): Inventory {
  return parseInventory({ servers }, baseDir, 'test inventory');
}

export async function makeApp(opts: { env?: Record<string, string>; servers?: unknown[]; baseDir?: string } = {}): Promise<FastifyInstance> {
  const config = testConfig(opts.env);
  const app = await buildApp(config, { inventory: inventoryOf(opts.servers ?? [], opts.baseDir) });
  await app.ready();
  return app;
}

export function token(claims: { sub?: string; tenant?: string; scope?: string } = {}, ttlSeconds = 600): string {
  return signToken(
    { sub: claims.sub ?? 'tester', tenant: claims.tenant ?? 'acme', scope: claims.scope ?? 'jobs:read jobs:write' },
    { algorithm: 'HS256', key: TEST_SECRET },
    ttlSeconds,
  );
}

export function auth(claims?: Parameters<typeof token>[0]): { authorization: string } {
  return { authorization: `Bearer ${token(claims)}` };
}

export const ADMIN = { sub: 'root', tenant: 'default', scope: 'admin' };

/**
 * A completed job's result is exactly what its family's result schema says
 * (src/jobs/): nothing missing, nothing extra, so the contract the OpenAPI
 * document and the Python models are generated from is what processors return.
 */
export function checkResultContract(job: JobView): void {
  if (job.state !== 'completed') return;
  const parsed = JOB_RESULT_SCHEMAS[job.type].safeParse(job.result);
  if (!parsed.success) throw new Error(`job ${job.id} (${job.type}) completed with a result its contract does not describe: ${parsed.error.message}`);
  const extra = Object.keys(job.result as object).filter((k) => !(k in (parsed.data as object)));
  if (extra.length) throw new Error(`job ${job.id} (${job.type}) returned fields its contract does not declare: ${extra.join(', ')}`);
}

/** Poll the job until it is in one of `states` (default: finished); a completed job's result is checked against its contract. */
export async function waitForJob(
  app: FastifyInstance,
  id: string,
  states: string[] = ['completed', 'failed', 'cancelled'],
  timeoutMs = 20_000,
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await app.jobs.store.get(id, undefined);
    if (job && states.includes(job.state)) {
      checkResultContract(job);
      return job;
    }
    if (Date.now() > deadline) throw new Error(`job ${id} did not reach ${states.join('/')} (now ${job?.state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
