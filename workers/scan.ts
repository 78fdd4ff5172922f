import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Processor } from '../src/job-runner.js';
import type { ScanData } from '../src/job-types.js';

export type PortResult = { port: number; open: boolean; latencyMs: number; error?: string };

/** TCP-connect to host:port; open when the handshake completes within the timeout. */
export function probePort(address: string, port: number, timeoutMs: number): Promise<PortResult> {
  const started = process.hrtime.bigint();
  const elapsed = () => Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const finish = (open: boolean, error?: string) => {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve({ port, open, latencyMs: elapsed(), ...(error ? { error } : {}) });
    };
    socket.setTimeout(timeoutMs, () => finish(false, 'timeout'));
    socket.once('connect', () => finish(true));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
  });
}

/** Run `fn` over `items` with at most `limit` calls in flight, keeping order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(runners);
  return out;
}

/**
 * scan:quick resolves the host and connects to its first declared port;
 * scan:full connects to every declared port, a bounded number at a time.
 * Progress 40..80 as ports are checked.
 */
export const processScan: Processor<ScanData> = async ({ job, type, server, recordId, progress, log, deps }) => {
  const spec = server.scan!;
  await deps.records.start('scan', recordId, { serverId: server.id, jobId: job.id!, tenant: server.tenant });
  progress.milestone(30);

  const resolveStarted = Date.now();
  let address: string;
  try {
    address = (await lookup(server.host)).address;
  } catch (err) {
    throw new Error(`cannot resolve host "${server.host}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const resolveMs = Date.now() - resolveStarted;
  progress.milestone(40);

  const ports = type === 'scan:quick' ? spec.ports.slice(0, 1) : spec.ports;
  let checked = 0;
  const results = await mapLimit(ports, spec.concurrency, async (port) => {
    const r = await probePort(address, port, spec.timeoutMs);
    checked += 1;
    progress.band(40, 80, checked / ports.length);
    return r;
  });
  progress.milestone(80);
  log.info({ host: server.host, checked: results.length }, 'ports checked');

  const open = results.filter((r) => r.open).map(({ port, latencyMs }) => ({ port, latencyMs }));
  const closed = results.filter((r) => !r.open).map(({ port, latencyMs, error }) => ({ port, latencyMs, reason: error }));
  const result = {
    scanId: recordId,
    serverId: server.id,
    scanType: type === 'scan:quick' ? 'quick' : 'full',
    host: server.host,
    address,
    resolveMs,
    reachable: open.length > 0,
    open,
    closed,
  };
  await deps.records.finish('scan', recordId, 'completed', result);
  progress.milestone(90);
  return result;
};
