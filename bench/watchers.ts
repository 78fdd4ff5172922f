/**
 * P8: many clients following one job's event stream. The streams are opened
 * while the queue is paused (every one has its snapshot before the job
 * starts); then the job runs, and each stream's arrival time of every
 * progress event and of the end is compared with the moment an observer of
 * the queue's events in this process saw it happen in Redis.
 */
import http from 'node:http';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUES } from '../src/jobs/index.js';
import { percentile, redisCommands, until } from './harness.js';

export type Following = { streams: number; progressP99: number; endP99: number; endMax: number; commandsPerSecond: number };

type Arrivals = Map<string, number>;

/** Open one event stream; `arrivals` gets the time of each progress (`p<n>`) and of the end (`end`). */
function openStream(url: string, headers: Record<string, string>, agent: http.Agent, onFirst: () => void): Promise<Arrivals> {
  return new Promise((resolve, reject) => {
    const arrivals: Arrivals = new Map();
    const req = http.get(url, { agent, headers }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`event stream answered ${res.statusCode}`));
      let buf = '';
      let first = true;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const now = performance.now();
        buf += chunk;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (first && block.startsWith('event: snapshot')) {
            first = false;
            onFirst();
          } else if (block.startsWith('event: progress')) {
            const data = block.slice(block.indexOf('data: ') + 6);
            arrivals.set(`p${(JSON.parse(data) as { progress: number }).progress}`, now);
          } else if (block.startsWith('event: completed')) arrivals.set('end', now);
        }
      });
      res.on('end', () => (arrivals.has('end') ? resolve(arrivals) : reject(new Error('an event stream ended without the completed event'))));
    });
    req.on('error', reject);
  });
}

export async function followJob(o: { base: string; headers: Record<string, string>; redis: Redis; prefix: string; serverId: string; streams: number }): Promise<Following> {
  const name = QUEUES.update.redisName;
  const queue = new Queue(name, { connection: o.redis, prefix: o.prefix });
  const connection = o.redis.duplicate();
  const observer = new QueueEvents(name, { connection, prefix: o.prefix });
  const agent = new http.Agent({ maxSockets: o.streams });
  try {
    await queue.pause();
    await observer.waitUntilReady();
    const res = await fetch(`${o.base}/api/servers/${o.serverId}/update`, { method: 'POST', headers: { ...o.headers, 'content-type': 'application/json' }, body: '{}' });
    if (res.status !== 202) throw new Error(`P8: enqueue answered ${res.status}`);
    const { jobId } = ((await res.json()) as { data: { jobId: string } }).data;
    const seen: Arrivals = new Map();
    observer.on('progress', ({ jobId: id, data }) => {
      if (id === jobId) seen.set(`p${Number(data)}`, performance.now());
    });
    observer.on('completed', ({ jobId: id }) => {
      if (id === jobId) seen.set('end', performance.now());
    });
    let ready = 0;
    const streams = Array.from({ length: o.streams }, () => openStream(`${o.base}/api/jobs/${jobId}/events`, o.headers, agent, () => (ready += 1)));
    const all = Promise.all(streams);
    all.catch(() => {});
    await until(`P8: ${o.streams} streams open`, async () => ready === o.streams, 60_000, 20);
    const c0 = await redisCommands(o.redis);
    const t0 = performance.now();
    await queue.resume();
    const arrivals = await all;
    await until('P8: the observer saw the end', async () => seen.has('end'), 10_000, 10);
    const c1 = await redisCommands(o.redis);
    const seconds = (seen.get('end')! - t0) / 1000;
    const progress: number[] = [];
    const end: number[] = [];
    for (const a of arrivals) {
      for (const [key, at] of seen) {
        const got = a.get(key);
        if (got === undefined) continue;
        (key === 'end' ? end : progress).push(Math.max(0, got - at));
      }
    }
    if (progress.length < o.streams) throw new Error(`P8: ${progress.length} progress arrivals for ${o.streams} streams`);
    return { streams: o.streams, progressP99: percentile(progress, 99), endP99: percentile(end, 99), endMax: Math.max(...end), commandsPerSecond: (c1 - c0) / seconds };
  } finally {
    agent.destroy();
    await observer.close();
    connection.disconnect();
    await queue.close();
  }
}
