import { Api, Backoff, CliError, EXIT, jobPath, type JobView } from './api.js';
import { SseParser, type SseEvent } from './sse.js';

/** The events of GET /api/jobs/:id/events, data parsed: `snapshot`, `progress`, `log`, then one of TERMINAL. */
export type JobEvent = { event: string; id: string | undefined; data: unknown };

/** The last event of a job's stream; its id ends in `-end`. */
export const TERMINAL = ['completed', 'failed', 'cancelled', 'removed'] as const;
export type Ending = (typeof TERMINAL)[number];
const isTerminal = (event: string): event is Ending => (TERMINAL as readonly string[]).includes(event);

/**
 * A stream quiet for this long (no event, no heartbeat: the server sends one
 * every SSE_HEARTBEAT_MS, 15 s by default) is taken for a dead connection and
 * opened again: a laptop that slept or a NAT that forgot the connection does
 * not leave the command waiting for ever.
 */
const IDLE_MS = 75_000;

/**
 * Follow a job's event stream until its last event, calling `onEvent` for
 * each, and answer how it ended. A dropped connection (or a stream that ends
 * before the job does: an API process shutting down) is opened again with
 * Last-Event-ID, the number of log lines already received, so no line is
 * missed or repeated; the server sends a fresh `snapshot` first. Once the
 * stream has answered, transient refusals (429, 502-504, unreachable) are
 * retried as Backoff says; before, every failure stands. `signal`
 * aborts the whole follow (a --timeout): the abort reason is thrown.
 */
export async function followJobEvents(
  client: Api,
  id: string,
  onEvent: (e: JobEvent) => void,
  opts: { lastEventId?: string; signal?: AbortSignal } = {},
): Promise<Ending> {
  const path = `${jobPath(id)}/events`;
  const backoff = new Backoff();
  let lastId = opts.lastEventId;
  /** The stream has answered once: the job exists and the API is the right one. */
  let answered = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    const idle = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
    let timer = setTimeout(() => idle.abort(), IDLE_MS);
    const awake = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), IDLE_MS);
    };
    let failure: CliError;
    try {
      const res = await client.request('GET', path, { headers: { accept: 'text/event-stream', ...(lastId !== undefined ? { 'last-event-id': lastId } : {}) }, signal });
      // 204: the job has ended and the id we sent says we saw its last event (only after a terminal event, which we never resume from).
      if (res.status === 204) return await endingOf(client, id);
      // Gone between two connections: removed (cancelled before it ran, or deleted).
      if (res.status === 404 && answered) return 'removed';
      if (res.status !== 200 || !res.body) throw await Api.errorOf('GET', path, res);
      answered = true;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new SseParser();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          awake();
          for (const raw of parser.push(value)) {
            const event = parse(raw);
            if (event.id !== undefined) lastId = event.id;
            backoff.reset();
            onEvent(event);
            if (isTerminal(event.event)) return event.event;
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
      // The stream ended before the job did (an API process shutting down): open it again from where it stopped.
      failure = new CliError(`the event stream of ${id} ended before the job did`, EXIT.UNAVAILABLE);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      // A connection cut mid-stream or quiet for IDLE_MS: resume. A refusal: as Backoff decides.
      failure = err instanceof CliError ? err : client.unreachable(err);
    } finally {
      clearTimeout(timer);
    }
    // Until the stream has answered once, a failure stands (a wrong URL, an unknown job, no stream allowed): it says what is wrong at once.
    if (!answered) throw failure;
    await backoff.after(failure);
  }
}

function parse(raw: SseEvent): JobEvent {
  let data: unknown = raw.data;
  try {
    data = JSON.parse(raw.data);
  } catch {
    // Not JSON: kept as text.
  }
  return { event: raw.event, id: raw.id, data };
}

/** How a job that has ended ended, when the stream only says that it has (204). */
async function endingOf(client: Api, id: string): Promise<Ending> {
  try {
    const job = await client.call<JobView>('GET', jobPath(id));
    return job.state === 'failed' || job.state === 'cancelled' ? job.state : 'completed';
  } catch (err) {
    if (err instanceof CliError && err.status === 404) return 'removed';
    throw err;
  }
}
