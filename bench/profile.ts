/**
 * Where does the time of one kind of request go? Starts its own redis-server
 * and the product under the V8 CPU profiler, loads one route with autocannon
 * (after a warm-up), and prints CPU microseconds per request for the product
 * and for Redis, plus the functions that take the most of the product's time
 * (inclusive: a function with everything it calls).
 *
 *   npm run bench:profile -- post     POST /api/jobs, 50 connections
 *   npm run bench:profile -- get      GET /api/jobs/:id, 10 connections
 *   npm run bench:profile -- bulk     POST /api/jobs/bulk of 1000 jobs, 4 connections
 *   npm run bench:profile -- list     GET /api/jobs?limit=50 over 5000 jobs, 10 connections
 *   ... [--seconds 6] [--top 40]
 * The .cpuprofile is kept (path printed) for Chrome DevTools or speedscope.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { signToken } from '../src/http/auth.js';
import { startEmbeddedRedis } from '../src/redis/embedded.js';
import { createRedis } from '../src/redis/connection.js';
import { cpuSecondsOf, httpLoad, redisCpuSeconds, startChild } from './harness.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { seconds: { type: 'string', default: '6' }, top: { type: 'string', default: '40' } },
});
const kind = positionals[0] ?? 'post';
if (!['post', 'get', 'bulk', 'list'].includes(kind)) throw new Error('usage: bench/profile.ts post|get|bulk|list');
const SECONDS = Number(values.seconds);
const SECRET = 'bench-secret-bench-secret-bench-secret-1234';

const dir = mkdtempSync(path.join(os.tmpdir(), 'jobs-profile-'));
const profDir = path.join(dir, 'prof');
const redisServer = await startEmbeddedRedis(path.join(dir, 'redis'));
const redis = createRedis(redisServer.url, 'worker', 'profile');
const serversFile = path.join(dir, 'servers.json');
writeFileSync(serversFile, JSON.stringify({ servers: [{ id: 'b', host: '127.0.0.1', scan: { ports: [1] } }] }));
const spawnedAt = Date.now();
const product = await startChild(
  'src/main.ts',
  { REDIS_URL: redisServer.url, JWT_SECRET: SECRET, DATA_DIR: dir, SERVERS_FILE: serversFile, WORKERS: 'off', LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', API_RATE_LIMIT: '100000000', TENANT_MAX_QUEUED: '10000000' },
  '/health',
  ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
);
const headers = { authorization: `Bearer ${signToken({ sub: 'profile', scope: 'jobs:read jobs:write' }, { algorithm: 'HS256', key: SECRET }, 3600)}` };
const one = JSON.stringify({ type: 'scan:quick', data: { serverId: 'b' } });
const target = {
  post: { url: `${product.base}/api/jobs`, method: 'POST' as const, body: one, connections: 50, jobs: 1 },
  bulk: {
    url: `${product.base}/api/jobs/bulk`,
    method: 'POST' as const,
    body: JSON.stringify({ jobs: Array.from({ length: 1000 }, () => JSON.parse(one) as unknown) }),
    connections: 4,
    jobs: 1000,
  },
  get: { url: '', method: 'GET' as const, body: undefined, connections: 10, jobs: 0 },
  list: { url: `${product.base}/api/jobs?limit=50`, method: 'GET' as const, body: undefined, connections: 10, jobs: 0 },
}[kind as 'post' | 'get' | 'bulk' | 'list'];
if (kind === 'list') {
  const body = JSON.stringify({ jobs: Array.from({ length: 1000 }, () => JSON.parse(one) as unknown) });
  for (let i = 0; i < 5; i += 1) {
    await fetch(`${product.base}/api/jobs/bulk`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
  }
}
if (kind === 'get') {
  const res = await fetch(`${product.base}/api/jobs`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: one });
  target.url = `${product.base}${res.headers.get('location')}`;
}

const redisCpu = () => redisCpuSeconds(redis);
const startedAt = Date.now();
const before = { api: cpuSecondsOf(product.pid), redis: await redisCpu() };
// httpLoad warms up for a second before it measures; the CPU figures include the warm-up requests.
const load = await httpLoad({ url: target.url, method: target.method, body: target.body, connections: target.connections, seconds: SECONDS, headers });
const after = { api: cpuSecondsOf(product.pid), redis: await redisCpu() };
const windowEnd = Date.now();
await product.stop();
redis.disconnect();
await redisServer.stop();

const requests = load.requests * (1 + 1 / SECONDS); // the warm-up second ran at about the same rate
console.log(`${kind}: ${Math.round(load.rps)} req/s, p50 ${load.p50} ms, p99 ${load.p99} ms, ${load.errors} errors`);
console.log(
  `CPU per request: API ${Math.round(((after.api - before.api) * 1e6) / requests)} us, Redis ${Math.round(((after.redis - before.redis) * 1e6) / requests)} us` +
    (target.jobs > 1 ? ` (per job: API ${Math.round(((after.api - before.api) * 1e6) / requests / target.jobs)} us)` : ''),
);

// The profile: inclusive time per function over the measured window only.
type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] };
const file = path.join(profDir, readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))!);
const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n: Node) => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url.includes('node_modules/') ? url.split('node_modules/').pop()! : url.replace(`file://${path.dirname(import.meta.dirname)}/`, '');
  return `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
};
// Samples are timed from the profile's start (about when the process started); keep those of the load window.
const windowStart = prof.startTime + (startedAt - spawnedAt) * 1000;
const windowStop = prof.startTime + (windowEnd - spawnedAt) * 1000;
const inclusive = new Map<string, number>();
let t = prof.startTime;
let total = 0;
prof.samples.forEach((id, i) => {
  t += prof.timeDeltas[i] ?? 0;
  if (t < windowStart || t > windowStop) return;
  const d = prof.timeDeltas[i] ?? 0;
  total += d;
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur)!);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + d);
  }
});
console.log(`\nTop of the API process's time during the load (inclusive; ${file}):`);
for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`${((v / total) * 100).toFixed(1).padStart(6)}%  ${k}`);
}
