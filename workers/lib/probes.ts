import net from 'node:net';
import tls from 'node:tls';
import type { TlsInfo } from '../../src/jobs/index.js';

export type PortResult = { port: number; open: boolean; latencyMs: number; error?: string };

/** TCP-connect to host:port; open when the handshake completes within the timeout. */
export function probePort(address: string, port: number, timeoutMs: number, abort?: AbortSignal): Promise<PortResult> {
  const started = process.hrtime.bigint();
  const elapsed = () => Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const finish = (open: boolean, error?: string) => {
      abort?.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve({ port, open, latencyMs: elapsed(), ...(error ? { error } : {}) });
    };
    const onAbort = () => finish(false, 'cancelled');
    abort?.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(timeoutMs, () => finish(false, 'timeout'));
    socket.once('connect', () => finish(true));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
  });
}

const DAY_MS = 24 * 3600 * 1000;

function distinguishedName(name: Record<string, string | string[]> | undefined): string {
  return Object.entries(name ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(', ');
}

/**
 * The certificate of a port that speaks TLS, or null when it does not (the
 * handshake fails or times out). The certificate is read, not trusted:
 * `trusted` says whether it chains to a known CA for `servername`.
 */
export function probeTls(address: string, port: number, servername: string, timeoutMs: number, abort?: AbortSignal): Promise<TlsInfo | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: address,
      port,
      servername: net.isIP(servername) ? undefined : servername,
      rejectUnauthorized: false,
    });
    const finish = (info: TlsInfo | null) => {
      abort?.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve(info);
    };
    const onAbort = () => finish(null);
    abort?.addEventListener('abort', onAbort, { once: true });
    socket.setTimeout(timeoutMs, () => finish(null));
    socket.once('error', () => finish(null));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      if (!cert || !cert.valid_to) return finish(null);
      const validTo = new Date(cert.valid_to);
      const subject = distinguishedName(cert.subject as unknown as Record<string, string>);
      const issuer = distinguishedName(cert.issuer as unknown as Record<string, string>);
      finish({
        subject,
        issuer,
        validFrom: new Date(cert.valid_from).toISOString(),
        validTo: validTo.toISOString(),
        daysLeft: Math.floor((validTo.getTime() - Date.now()) / DAY_MS),
        selfSigned: subject === issuer,
        trusted: socket.authorized,
        trustError: socket.authorized ? null : String(socket.authorizationError ?? 'not trusted'),
      });
    });
  });
}
