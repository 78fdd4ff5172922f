import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** How much of a body the server reads and throws away, at most, before it answers early (a 413, a 401...). */
export const LINGER_MAX_BYTES = 16 * 1024 * 1024;
/** And for how long. */
export const LINGER_MAX_MS = 5000;

/**
 * Read what is left of a request body, throwing it away, until it ends or a
 * bound is reached.
 *
 * An answer sent before the body is read (a 413 for a body over the limit, a
 * 401 before a large upload) is followed by the socket being closed, at once
 * when the client asked for `Connection: close` (Python's urllib always does)
 * or when Fastify does after a body error. Closing a socket with unread bytes
 * makes the kernel send a reset, and a client that sends the whole body before
 * reading the answer (urllib, most simple clients) gets a broken pipe instead
 * of the error envelope. Reading the rest first, as nginx's lingering close
 * does, lets it finish sending and read the answer. Bounded, so that a client
 * streaming without end cannot hold the socket.
 */
export function drainBody(raw: IncomingMessage): Promise<void> {
  if (raw.complete || raw.readableEnded || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let read = 0;
    const finish = () => {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', finish);
      raw.off('close', finish);
      raw.off('error', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > LINGER_MAX_BYTES) finish();
    };
    const timer = setTimeout(finish, LINGER_MAX_MS);
    raw.on('data', onData);
    raw.once('end', finish);
    raw.once('close', finish);
    raw.once('error', finish);
    raw.resume();
  });
}

/** A Fastify onSend hook: an answer to a request whose body is still arriving waits until it is read (bounded). */
export function lingerOnEarlyAnswer(request: FastifyRequest, _reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  if (request.raw.complete) return done(null, payload);
  void drainBody(request.raw).then(() => done(null, payload));
}
