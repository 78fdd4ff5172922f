import type { FastifyInstance, FastifyReply } from 'fastify';
import type { JobFeed } from '../services/job-feeds.js';
import type { JobView } from '../store/job-store.js';
import { AppError } from '../errors.js';
import { isFinished } from '../jobs/index.js';

export const ended = (v: JobView) => isFinished(v.state);

/**
 * The id of a stream's last event (`completed`, `failed`, `cancelled`, `removed`) is the
 * number of log lines plus this mark. A client that reconnects with it saw the
 * end: it is answered 204, which tells a browser's EventSource to stop
 * reconnecting (a stream that merely ends makes it reconnect for ever).
 */
export const END_MARK = '-end';

/** What a reconnecting client's Last-Event-ID says: log lines it has, and whether it saw the last event. */
export function parseLastEventId(value: string | undefined): { fromLog: number; sawEnd: boolean } {
  const m = /^(\d{1,9})(-end)?$/.exec(value ?? '');
  return m ? { fromLog: Number(m[1]), sawEnd: m[2] === END_MARK } : { fromLog: 0, sawEnd: false };
}

/** Open event streams per tenant, per app (one API process). */
const openStreams = new WeakMap<FastifyInstance, Map<string, number>>();

/**
 * The open streams of each app, ended when it closes: a stream is a response
 * that never ends by itself, and the server's close would wait for it (a
 * client reconnects with Last-Event-ID to another process).
 */
const closers = new WeakMap<object, Set<() => void>>();

/** Keyed by the HTTP server, which every plugin context of an app shares (a route's `app` is its own context). */
function endOnClose(app: FastifyInstance, end: () => void): () => void {
  let set = closers.get(app.server);
  if (!set) closers.set(app.server, (set = new Set()));
  set.add(end);
  const own = set;
  return () => own.delete(end);
}

/** End every open event stream of `app` (its preClose hook, app.ts): each client sees the stream end and may reconnect elsewhere. */
export function endOpenStreams(app: FastifyInstance): void {
  for (const end of [...(closers.get(app.server) ?? [])]) end();
}

/** Count a stream of `owner` open, or refuse it (429) when the tenant holds TENANT_MAX_STREAMS already; answers the release. */
function openStream(app: FastifyInstance, owner: string): () => void {
  let counts = openStreams.get(app);
  if (!counts) openStreams.set(app, (counts = new Map<string, number>()));
  const open = counts.get(owner) ?? 0;
  if (open >= app.config.tenantMaxStreams) {
    throw new AppError(
      429,
      'TOO_MANY_STREAMS',
      `Tenant "${owner}" has ${open} event streams open, the most allowed (TENANT_MAX_STREAMS=${app.config.tenantMaxStreams}); close one, or wait for a job with ?waitMs= instead.`,
      { 'retry-after': '5' },
    );
  }
  counts.set(owner, open + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const now = (counts.get(owner) ?? 1) - 1;
    if (now <= 0) counts.delete(owner);
    else counts.set(owner, now);
  };
}

/**
 * Serve one job's server-sent events on `reply` (hijacked: Fastify hands over
 * the socket). Everything written goes through one chain, so events leave in
 * the order they happened: the snapshot, the log lines from `fromLog`, then
 * progress, log and the terminal event. Each event's id is the number of log
 * lines sent so far, which is all a reconnecting client needs (Last-Event-ID).
 */
export async function streamJobEvents(
  app: FastifyInstance,
  reply: FastifyReply,
  first: JobView,
  fromLog: number,
  tenant: string | undefined,
  /** The caller's own tenant, whose streams are counted. */
  owner: string,
): Promise<void> {
  const { id } = first;
  const release = openStream(app, owner);
  // eslint-disable-next-line prefer-const -- assigned once `end` exists, below.
  let forget: (() => void) | undefined;
  const raw = reply.raw;
  let sent = fromLog;
  let closed = false;
  let lastWrite = Date.now();
  let chain: Promise<unknown> = Promise.resolve();
  // `end` may run (client gone) before the follow below resolves.
  let stop: (() => void) | undefined;

  const write = (text: string) => {
    if (closed) return;
    lastWrite = Date.now();
    raw.write(text);
  };
  const send = (event: string, data: unknown, id: string = String(sent)) => write(`event: ${event}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`);
  const end = (last?: string) => {
    if (closed) return;
    closed = true;
    release();
    forget?.();
    clearInterval(heartbeat);
    stop?.();
    raw.end(last);
  };
  const serial = (step: () => Promise<unknown> | void) => {
    chain = chain.then(() => (closed ? undefined : step())).catch((err: Error) => {
      reply.request.log.warn({ jobId: id, err: err.message }, 'event stream ended on an error');
      end();
    });
  };
  // What this stream has not written yet of the feed shared by every stream of the job in this process.
  const writeLogs = (feed: JobFeed) => {
    for (; sent < feed.lines.length; ) {
      sent += 1;
      write(`event: log\nid: ${sent}\ndata: ${feed.logJson[sent - 1]}\n\n`);
    }
  };
  const writeEnd = (feed: JobFeed) => {
    writeLogs(feed);
    const view = feed.end!.view;
    const event = !view ? 'removed' : view.state === 'failed' || view.state === 'cancelled' ? view.state : 'completed';
    // The last event and the end of the response in one write.
    end(`event: ${event}\nid: ${sent}${END_MARK}\ndata: ${feed.end!.json}\n\n`);
  };
  reply.hijack();
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': String(reply.request.id),
  });
  raw.on('close', end);
  forget = endOnClose(app, end);
  const heartbeat = setInterval(() => {
    if (Date.now() - lastWrite >= app.config.sseHeartbeatMs - 50) write(`: heartbeat ${new Date().toISOString()}\n\n`);
  }, app.config.sseHeartbeatMs);

  // Follow first, so nothing that happens while the snapshot is read is lost: what the feed says queues behind the snapshot.
  const following = app.feeds.follow(id, {
    progress: (json) => serial(() => write(`event: progress\nid: ${sent}\ndata: ${json}\n\n`)),
    logs: (feed) => serial(() => writeLogs(feed)),
    ended: (feed) => serial(() => writeEnd(feed)),
    failed: (err) =>
      serial(() => {
        throw err;
      }),
  });
  // A client gone before the follow is done still leaves the feed.
  following.then(
    ({ leave }) => {
      stop = leave;
      if (closed) leave();
    },
    () => {},
  );
  serial(async () => {
    const { feed } = await following;
    const now = (await app.jobs.store.get(id, tenant)) ?? first;
    send('snapshot', now);
    writeLogs(feed);
    if (feed.end) writeEnd(feed);
    else if (ended(now)) await feed.finish(now);
  });
}
