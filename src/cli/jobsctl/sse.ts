/** One server-sent event: its type (`message` when the stream names none), its id (the last one the stream set) and its data lines joined. */
export type SseEvent = { event: string; id: string | undefined; data: string };

/**
 * A parser of `text/event-stream` (the WHATWG HTML "event stream
 * interpretation"): lines end with CRLF, LF or CR, `:` starts a comment (the
 * server's heartbeats), a blank line dispatches the event, an event without
 * data is not dispatched, the id carries over to later events. Text is fed
 * as it arrives, cut anywhere, even between a CR and its LF.
 */
export class SseParser {
  private buffer = '';
  private started = false;
  private type = '';
  private data: string[] = [];
  private lastId: string | undefined;

  /** The events completed by `text`. */
  push(text: string): SseEvent[] {
    this.buffer += text;
    if (!this.started && this.buffer.length > 0) {
      if (this.buffer.startsWith('\uFEFF')) this.buffer = this.buffer.slice(1);
      this.started = true;
    }
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      // A CR last in the buffer may be the first half of a CRLF: wait for the next chunk to know.
      if (c === '\r' && i + 1 === this.buffer.length) break;
      const event = this.line(this.buffer.slice(start, i));
      if (event) events.push(event);
      if (c === '\r' && this.buffer[i + 1] === '\n') i += 1;
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    // `retry` and unknown fields: nothing to do for a client that reconnects on its own terms.
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const event = this.data.length > 0 ? { event: this.type || 'message', id: this.lastId, data: this.data.join('\n') } : undefined;
    this.type = '';
    this.data = [];
    return event;
  }
}
