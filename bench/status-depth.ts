/**
 * How GET /api/jobs/:id behaves as the queue gets deep: req/s and latency for
 * the oldest waiting job with 100 and with 100 000 waiting jobs, against a bare
 * Fastify route measured in the same run. Starts its own redis-server.
 *
 *   npx tsx bench/status-depth.ts [--deep 100000] [--seconds 5]
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { buildApp } from '../src/app.js';
import { signToken } from '../src/auth.js';
import { loadConfig } from '../src/config.js';
import { startEmbeddedRedis } from '../src/embedded-redis.js';
import { parseInventory } from '../src/inventory.js';

const { values } = parseArgs({ options: { deep: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '5' } } });
const DEEP = Number(values.deep);
const SECONDS = Number(values.seconds);
const SECRET = 'bench-secret-bench-secret-bench-secret-1234';

async function load(url: string, headers: Record<string, string> = {}) {
  const r = await autocannon({ url, connections: 50, duration: SECONDS, headers });
  return { rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'jobs-bench-'));
const redis = await startEmbeddedRedis(path.join(dir, 'redis'));
const bare = Fastify();
bare.get('/', async () => ({ success: true, data: { ok: 1 } }));
await bare.listen({ port: 0, host: '127.0.0.1' });
const config = loadConfig({ REDIS_URL: redis.url, JWT_SECRET: SECRET, WORKERS: 'off', LOG_LEVEL: 'silent', DATA_DIR: dir });
const app = await buildApp(config, { inventory: parseInventory({ servers: [{ id: 'b', host: '127.0.0.1', scan: { ports: [1] } }] }, dir) });
await app.listen({ port: 0, host: '127.0.0.1' });
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
const token = signToken({ sub: 'bench', tenant: 'default', scope: 'jobs:read jobs:write' }, { algorithm: 'HS256', key: SECRET }, 3600);
const headers = { authorization: `Bearer ${token}` };

const envelope = { tenant: 'default', requestedBy: 'bench', recordId: 'r', input: { serverId: 'b' } };
async function fill(n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, n - i) }, () => app.jobs.store.add('scan:quick', envelope)));
  }
}

const oldest = (await app.jobs.store.add('scan:quick', envelope)).jobId;
await fill(99);
const b0 = await load(`http://127.0.0.1:${(bare.server.address() as { port: number }).port}/`);
const shallow = await load(`${base}/api/jobs/${oldest}`, headers);
await fill(DEEP - 100);
const deep = await load(`${base}/api/jobs/${oldest}`, headers);

console.table({ 'B0 bare route': b0, 'status, 100 waiting': shallow, [`status, ${DEEP} waiting`]: deep });
console.log(`deep/shallow = ${(deep.rps / shallow.rps).toFixed(2)}, deep/B0 = ${(deep.rps / b0.rps).toFixed(2)}`);
await app.close();
await bare.close();
await redis.stop();
