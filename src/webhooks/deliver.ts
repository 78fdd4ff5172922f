import http from 'node:http';
import https from 'node:https';
import { AddressRefusedError, isPrivateAddress, literalAddress, publicOnlyLookup } from './address-policy.js';
import { API_VERSION } from '../version.js';

export type PostOutcome =
  | { ok: true; statusCode: number; durationMs: number }
  /** `final`: retrying cannot help (the address is refused). */
  | { ok: false; statusCode: number | null; error: string; final: boolean; durationMs: number };

/**
 * POST one delivery. node:http rather than fetch: its `lookup` hook lets the
 * address check run on the address the socket connects to (fetch resolves
 * the name again by itself after any check made before it, which a DNS
 * rebinding answer defeats). Redirects are not followed (a 3xx is a failed
 * attempt); the whole exchange, up to the status line, is bounded by
 * `timeoutMs`; the answer's body is read and dropped.
 */
export function postWebhook(url: string, headers: Record<string, string>, body: string, opts: { timeoutMs: number; allowPrivate: boolean }): Promise<PostOutcome> {
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  const target = new URL(url);
  const literal = literalAddress(target.hostname);
  if (!opts.allowPrivate && literal !== undefined && isPrivateAddress(literal)) {
    const err = new AddressRefusedError(target.hostname, literal);
    return Promise.resolve({ ok: false, statusCode: null, error: err.message, final: true, durationMs: 0 });
  }
  const signal = AbortSignal.timeout(opts.timeoutMs);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<PostOutcome>((resolve) => {
    const req = client.request(
      target,
      {
        method: 'POST',
        agent: false,
        signal,
        ...(opts.allowPrivate ? {} : { lookup: publicOnlyLookup }),
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': `jobs-api-webhooks/${API_VERSION}`,
        },
      },
      (res) => {
        const statusCode = res.statusCode ?? 0;
        res.on('error', () => {});
        res.resume();
        if (statusCode >= 200 && statusCode < 300) resolve({ ok: true, statusCode, durationMs: elapsed() });
        else resolve({ ok: false, statusCode, error: `HTTP ${statusCode}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, final: false, durationMs: elapsed() });
      },
    );
    req.on('error', (err: Error & { code?: string }) => {
      if (err instanceof AddressRefusedError || err.code === 'EADDRREFUSED') return resolve({ ok: false, statusCode: null, error: err.message, final: true, durationMs: elapsed() });
      const error = signal.aborted ? `no answer within ${opts.timeoutMs} ms (WEBHOOK_TIMEOUT_MS)` : `${err.code ? `${err.code}: ` : ''}${err.message}`;
      resolve({ ok: false, statusCode: null, error, final: false, durationMs: elapsed() });
    });
    req.end(body);
  });
}
