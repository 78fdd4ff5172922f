import { execFileSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, token } from '../helpers.js';
import { nodesOf } from '../../src/redis/connection.js';

const H = auth({ tenant: 'ops' });
const node = process.execPath;

type Sse = { event: string; id?: string; data?: unknown; comment?: string };

/** Read an event stream with Node's own http client until it ends (or `stopAfter` says so); parse it as EventSource does. */
function readEvents(url: string, headers: Record<string, string>, stopAfter?: (events: Sse[]) => boolean): Promise<{ status: number; contentType: string; events: Sse[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      const events: Sse[] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev: Sse = { event: 'message' };
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) ev.comment = line.slice(1).trim();
            else if (line.startsWith('event: ')) ev.event = line.slice(7);
            else if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
          }
          events.push(ev.comment !== undefined && ev.event === 'message' ? { event: 'comment', comment: ev.comment } : ev);
          if (stopAfter?.(events)) {
            req.destroy();
            resolve({ status: res.statusCode!, contentType: String(res.headers['content-type']), events });
          }
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, contentType: String(res.headers['content-type']), events }));
    });
    req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
  });
}

describe('watching jobs without busy polling', () => {
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    app = await makeApp({
      // A thousand streams of one tenant below: raise its cap of open streams (50 by default) for that.
      env: { SSE_HEARTBEAT_MS: '300', TENANT_MAX_STREAMS: '5000' },
      servers: [
        {
          id: 'slow',
          tenant: 'ops',
          host: '127.0.0.1',
          update: {
            command: [node, '-e', "let i = 0; const t = setInterval(() => { i += 1; console.log('step ' + i); console.log('PROGRESS ' + i * 25); if (i === 4) { clearInterval(t); } }, 250)"],
            timeoutSec: 30,
          },
        },
        { id: 'idle', tenant: 'ops', host: '127.0.0.1', update: { command: [node, '-e', "setTimeout(() => { console.log('done'); process.exit(3) }, 1200)"], timeoutSec: 30 } },
      ],
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  const enqueue = async (serverId: string) => (await app.inject({ method: 'POST', url: `/api/servers/${serverId}/update`, headers: { ...H }, payload: { options: { attempts: 1 } } })).json().data.jobId as string;

  it('long-poll: answers when the job ends, not before; a short wait answers with the job as it is', async () => {
    const id = await enqueue('slow');
    const t0 = Date.now();
    const short = await app.inject({ url: `/api/jobs/${id}?waitMs=100`, headers: H });
    expect(short.statusCode).toBe(200);
    expect(['waiting', 'active']).toContain(short.json().data.state);
    const long = await app.inject({ url: `/api/jobs/${id}?waitMs=30000`, headers: H });
    expect(long.json().data).toMatchObject({ id, state: 'completed', progress: 100 });
    expect(Date.now() - t0).toBeLessThan(20_000);
    // Already finished: at once.
    expect((await app.inject({ url: `/api/jobs/${id}?waitMs=60000`, headers: H })).json().data.state).toBe('completed');
    expect((await app.inject({ url: `/api/jobs/${id}?waitMs=60001`, headers: H })).statusCode).toBe(400);
    expect((await app.inject({ url: `/api/jobs/${id}?waitMs=1000`, headers: auth({ tenant: 'other' }) })).statusCode).toBe(404);
    // Waiting holds no Redis connection: the hub has no listener left.
    expect(app.events.listeners).toBe(0);
  });

  it('server-sent events: snapshot, progress and log lines as they happen, then completed, then the end', async () => {
    const id = await enqueue('slow');
    const { status, contentType, events } = await readEvents(`${base}/api/jobs/${id}/events`, { authorization: `Bearer ${token({ tenant: 'ops' })}` });
    expect(status).toBe(200);
    expect(contentType).toMatch(/^text\/event-stream/);
    expect(events[0]).toMatchObject({ event: 'snapshot', data: { id } });
    const lines = events.filter((e) => e.event === 'log').map((e) => (e.data as { line: string }).line);
    expect(lines.filter((l) => l.startsWith('step '))).toEqual(['step 1', 'step 2', 'step 3', 'step 4']);
    const progress = events.filter((e) => e.event === 'progress').map((e) => (e.data as { progress: number }).progress);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const last = events.at(-1)!;
    expect(last).toMatchObject({ event: 'completed', data: { id, state: 'completed' } });
    // Ids count the log lines sent: the last one is the number of lines, marked as the end.
    expect(last.id).toBe(`${lines.length}-end`);

    // Reconnecting with Last-Event-ID: a snapshot, then only the lines after it, then the end.
    const again = await readEvents(`${base}/api/jobs/${id}/events`, { authorization: `Bearer ${token({ tenant: 'ops' })}`, 'last-event-id': '2' });
    expect(again.events[0]!.event).toBe('snapshot');
    expect(again.events.filter((e) => e.event === 'log').map((e) => (e.data as { line: string }).line)).toEqual(lines.slice(2));
    expect(again.events.at(-1)!.event).toBe('completed');

    // A browser's EventSource reconnects whenever a stream ends; with the last event's id it is told to stop (204).
    const done = await fetch(`${base}/api/jobs/${id}/events`, { headers: { authorization: `Bearer ${token({ tenant: 'ops' })}`, 'last-event-id': last.id! } });
    expect([done.status, await done.text()]).toEqual([204, '']);
  });

  it('heartbeats while idle, a failed event for a failing job, 404 for another tenant', async () => {
    const id = await enqueue('idle');
    const { events } = await readEvents(`${base}/api/jobs/${id}/events`, { authorization: `Bearer ${token({ tenant: 'ops' })}` });
    expect(events.some((e) => e.event === 'comment' && e.comment!.startsWith('heartbeat'))).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: 'failed', data: { state: 'failed', failedReason: expect.stringContaining('exited with code 3') } });
    const other = await app.inject({ url: `/api/jobs/${id}/events`, headers: auth({ tenant: 'other' }) });
    expect(other.statusCode).toBe(404);
  });

  it('ends with a cancelled event for a job stopped on request, and a long poll answers it at once', async () => {
    const id = await enqueue('idle');
    const stream = readEvents(`${base}/api/jobs/${id}/events`, { authorization: `Bearer ${token({ tenant: 'ops' })}` });
    const poll = app.inject({ url: `/api/jobs/${id}?waitMs=20000`, headers: H });
    for (let i = 0; i < 100 && (await app.jobs.store.get(id, undefined))?.state !== 'active'; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${id}/cancel`, headers: H })).json().data.outcome).toBe('cancelled');
    const { events } = await stream;
    expect(events.at(-1)).toMatchObject({ event: 'cancelled', id: expect.stringMatching(/-end$/), data: { state: 'cancelled', failedReason: 'cancelled' } });
    expect((await poll).json().data).toMatchObject({ id, state: 'cancelled' });
  });

  it('a job removed before it started ends its streams with a removed event, and a long poll answers at once (404)', async () => {
    const id = (await app.inject({ method: 'POST', url: '/api/servers/idle/update', headers: { ...H }, payload: { options: { delay: 60_000 } } })).json().data.jobId as string;
    const stream = readEvents(`${base}/api/jobs/${id}/events`, { authorization: `Bearer ${token({ tenant: 'ops' })}` });
    const t0 = Date.now();
    const poll = app.inject({ url: `/api/jobs/${id}?waitMs=20000`, headers: H });
    for (let i = 0; i < 100 && app.feeds.followers < 1; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${id}/cancel`, headers: H })).json().data.outcome).toBe('removed');
    const { events } = await stream;
    expect(events.map((e) => e.event)).toEqual(['snapshot', 'removed']);
    expect(events[1]).toMatchObject({ id: '0-end', data: { jobId: id } });
    expect((await poll).statusCode).toBe(404);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('streams of one job share its reads: two hundred cost Redis the log reads of one, and each gets every line and the end', async () => {
    const lrangeCalls = async () => {
      let calls = 0;
      for (const node of nodesOf(app.redis)) {
        const m = /cmdstat_lrange:calls=(\d+)/.exec(String(await node.info('commandstats')));
        calls += Number(m?.[1] ?? 0);
      }
      return calls;
    };
    const id = (await app.inject({ method: 'POST', url: '/api/servers/slow/update', headers: { ...H }, payload: { options: { attempts: 1, delay: 1500 } } })).json().data.jobId as string;
    const agent = new http.Agent({ maxSockets: 200 });
    const auth = { authorization: `Bearer ${token({ tenant: 'ops' })}` };
    const snapshots: Array<() => void> = [];
    const all = Array.from({ length: 200 }, () => {
      let saw: () => void = () => {};
      snapshots.push(() => saw());
      return { seen: new Promise<void>((r) => (saw = r)) };
    });
    const streams = all.map(
      (s, i) =>
        new Promise<Sse[]>((resolve, reject) => {
          const req = http.get(`${base}/api/jobs/${id}/events`, { agent, headers: auth }, (res) => {
            let buf = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (!buf) snapshots[i]!();
              buf += chunk;
            });
            res.on('end', () =>
              resolve(
                buf
                  .split('\n\n')
                  .filter((b) => b.startsWith('event: '))
                  .map((b) => ({ event: b.split('\n')[0]!.slice(7), data: JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) })),
              ),
            );
          });
          req.on('error', reject);
        }),
    );
    await Promise.all(all.map((s) => s.seen));
    const before = await lrangeCalls();
    const results = await Promise.all(streams);
    const reads = (await lrangeCalls()) - before;
    agent.destroy();
    for (const events of results) {
      expect(events[0]!.event).toBe('snapshot');
      expect(events.filter((e) => e.event === 'log').map((e) => (e.data as { line: string }).line).filter((l) => l.startsWith('step '))).toEqual(['step 1', 'step 2', 'step 3', 'step 4']);
      expect(events.at(-1)).toMatchObject({ event: 'completed', data: { id, state: 'completed' } });
    }
    // A read per notification of new lines (a handful of batches) and one at the end, not one per stream
    // (which would be 200 per notification).
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThan(100);
    expect(app.feeds.size).toBe(0);
  });

  it('a thousand open streams share the same few Redis connections', async () => {
    // A job that will not end while the streams are open: delayed for a minute.
    const id = (await app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'update:server', data: { serverId: 'idle' }, options: { delay: 60_000 } } })).json().data.jobId as string;
    // This process's connections, on every node (one Redis, or each master of a Cluster): named `jobs-api:…:<pid>`.
    const ownConnections = async () => {
      const mine = new RegExp(` name=jobs-api:\\S*:${process.pid} `);
      const lists = await Promise.all(nodesOf(app.redis).map(async (node) => String(await node.client('LIST')).split('\n')));
      return lists.flat().filter((line) => mine.test(line)).length;
    };
    const before = await ownConnections();
    expect(before).toBeGreaterThan(0);
    // Each stream is two sockets in this process (client and server): stay under the file descriptor limit.
    const fdLimit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || 1024;
    const n = Math.min(1000, Math.floor((fdLimit - 300) / 2));
    const agent = new http.Agent({ maxSockets: n });
    const opened = await Promise.all(
      Array.from({ length: n }, () =>
        new Promise<http.ClientRequest>((resolve) => {
          const req = http.get(`${base}/api/jobs/${id}/events`, { agent, headers: { authorization: `Bearer ${token({ tenant: 'ops' })}` } }, (res) => {
            res.once('data', () => resolve(req));
          });
        }),
      ),
    );
    // One subscription to the job's events in this process, fanned out to every stream.
    expect(app.events.listeners).toBe(1);
    expect(app.feeds.followers).toBe(n);
    // Not one per stream: at most a couple more (a QueueEvents opened now, a reconnect on a loaded machine).
    expect(await ownConnections()).toBeLessThanOrEqual(before + 3);
    for (const req of opened) req.destroy();
    agent.destroy();
    await new Promise((r) => setTimeout(r, 500));
    expect(app.events.listeners).toBe(0);
    expect(app.feeds.size).toBe(0);
    await app.inject({ method: 'POST', url: `/api/jobs/${id}/cancel`, headers: H });
  });
});

describe('limits on event streams', () => {
  it('a tenant may hold TENANT_MAX_STREAMS open at once: one more is a 429 with the envelope; another tenant is not affected', async () => {
    const servers = [
      { id: 'a', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1] } },
      { id: 'b', tenant: 'other', host: '127.0.0.1', scan: { ports: [1] } },
    ];
    const app = await makeApp({ env: { WORKERS: 'off', TENANT_MAX_STREAMS: '2' }, servers });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const delayed = async (tenant: string, serverId: string) =>
      (await app.inject({ method: 'POST', url: '/api/jobs', headers: auth({ tenant }), payload: { type: 'scan:quick', data: { serverId }, options: { delay: 60_000 } } })).json().data
        .jobId as string;
    const open = (tenant: string, id: string) =>
      new Promise<{ status: number; req: http.ClientRequest; body: Promise<string> }>((resolve) => {
        const req = http.get(`${base}/api/jobs/${id}/events`, { headers: { authorization: `Bearer ${token({ tenant })}` } }, (res) => {
          let text = '';
          const body = new Promise<string>((done) => {
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => done(text));
          });
          res.once('data', () => resolve({ status: res.statusCode!, req, body }));
          if (res.statusCode !== 200) res.once('end', () => resolve({ status: res.statusCode!, req, body: Promise.resolve(text) }));
        });
      });
    try {
      const mine = await delayed('ops', 'a');
      const first = await open('ops', mine);
      const second = await open('ops', mine);
      expect([first.status, second.status]).toEqual([200, 200]);
      const third = await open('ops', mine);
      expect(third.status).toBe(429);
      expect(JSON.parse(await third.body)).toMatchObject({ success: false, error: { code: 'TOO_MANY_STREAMS', message: expect.stringContaining('TENANT_MAX_STREAMS=2') } });
      const theirs = await open('other', await delayed('other', 'b'));
      expect(theirs.status).toBe(200);
      // Closing one frees its place.
      first.req.destroy();
      await new Promise((r) => setTimeout(r, 200));
      const again = await open('ops', mine);
      expect(again.status).toBe(200);
      for (const s of [second, theirs, again]) s.req.destroy();
    } finally {
      await app.close();
    }
  });
});

describe('shutdown with streams open', () => {
  it('closing the server ends its open event streams at once instead of waiting for their clients', async () => {
    const app = await makeApp({ env: { WORKERS: 'off' }, servers: [{ id: 'a', tenant: 'ops', host: '127.0.0.1', scan: { ports: [1] } }] });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const id = (await app.inject({ method: 'POST', url: '/api/jobs', headers: H, payload: { type: 'scan:quick', data: { serverId: 'a' }, options: { delay: 60_000 } } })).json().data
      .jobId as string;
    const stream = await new Promise<{ closed: Promise<void> }>((opened) => {
      http.get(`${base}/api/jobs/${id}/events`, { headers: { authorization: `Bearer ${token({ tenant: 'ops' })}` } }, (res) => {
        const closed = new Promise<void>((r) => res.on('close', () => r()));
        res.once('data', () => opened({ closed }));
      });
    });
    // Without ending the streams, close would wait for the client (the test would time out).
    await app.close();
    await stream.closed;
  });
});

describe('limits on connections', () => {
  it('a client that does not finish sending its request within REQUEST_TIMEOUT_MS gets 408 and the connection closes', async () => {
    const app = await makeApp({ env: { WORKERS: 'off', REQUEST_TIMEOUT_MS: '1000' } });
    const base = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
    try {
      const socket = net.connect(Number(base.port), base.hostname);
      let received = '';
      socket.on('data', (c: Buffer) => (received += c.toString()));
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      // Headers started, never finished (a slow or stalled sender).
      socket.write('GET /api/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      await closed;
      expect(received).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      await app.close();
    }
  });
});
