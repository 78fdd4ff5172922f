import { lookup } from 'node:dns/promises';
import type { Processor } from './run-job.js';
import { probePort, probeTls, type PortResult } from './lib/probes.js';
import type { Finding, ScanData, ScanResult, TlsInfo } from '../src/jobs/index.js';

type CheckedPort = PortResult & { tls?: TlsInfo | null };

/** A certificate that expires within this many days is a finding. */
export const CERT_WARN_DAYS = 14;

/** What a scan should tell an operator: ports against `scan.expect`, and certificates that expire soon or have. */
export function findingsOf(
  checked: readonly CheckedPort[],
  expect: readonly number[] | undefined,
): Finding[] {
  const out: Finding[] = [];
  for (const r of checked) {
    if (expect && expect.includes(r.port) && !r.open) {
      out.push({ kind: 'expected-port-closed', port: r.port, message: `port ${r.port} should be open but is closed (${r.error ?? 'no answer'})` });
    }
    if (expect && !expect.includes(r.port) && r.open) {
      out.push({ kind: 'unexpected-port-open', port: r.port, message: `port ${r.port} is open but not in scan.expect` });
    }
    const t = r.tls;
    if (t && Date.parse(t.validTo) <= Date.now()) {
      out.push({ kind: 'certificate-expired', port: r.port, daysLeft: t.daysLeft, message: `the certificate on port ${r.port} (${t.subject}) expired on ${t.validTo}` });
    } else if (t && t.daysLeft <= CERT_WARN_DAYS) {
      out.push({ kind: 'certificate-expiring', port: r.port, daysLeft: t.daysLeft, message: `the certificate on port ${r.port} (${t.subject}) expires in ${t.daysLeft} days, on ${t.validTo}` });
    }
  }
  return out;
}

/** Run `fn` over `items` with at most `limit` calls in flight, keeping order; stops starting new calls once `abort` fires. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, abort?: AbortSignal): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !abort?.aborted) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(runners);
  abort?.throwIfAborted();
  return out;
}

/**
 * scan:quick resolves the host and connects to its first declared port;
 * scan:full connects to every declared port (and every port of `scan.expect`),
 * a bounded number at a time, and reads the TLS certificate of each open port
 * that speaks TLS. The result carries `findings`: an expected port closed, an
 * unexpected port open, a certificate expiring within 14 days or expired.
 * Progress 40..80 as ports are checked.
 */
export const processScan: Processor<ScanData, ScanResult> = async ({ job, type, server, recordId, progress, log, jobLog, signal, deps }) => {
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
  jobLog.step(`${server.host} resolves to ${address} (${resolveMs} ms)`);
  progress.milestone(40);

  const full = type !== 'scan:quick';
  const ports = full ? [...new Set([...spec.ports, ...(spec.expect ?? [])])] : spec.ports.slice(0, 1);
  let checked = 0;
  const results = await mapLimit(
    ports,
    spec.concurrency,
    async (port): Promise<CheckedPort> => {
      const r = await probePort(address, port, spec.timeoutMs, signal);
      const tlsInfo = full && r.open ? await probeTls(address, port, server.host, spec.timeoutMs, signal) : undefined;
      checked += 1;
      progress.band(40, 80, checked / ports.length);
      jobLog.step(
        r.open
          ? `port ${port} open (${r.latencyMs} ms)${tlsInfo ? `, TLS certificate ${tlsInfo.subject}, issued by ${tlsInfo.issuer}, ${tlsInfo.daysLeft} days left` : ''}`
          : `port ${port} closed (${r.error})`,
      );
      return { ...r, tls: tlsInfo };
    },
    signal,
  );
  progress.milestone(80);
  log.info({ host: server.host, checked: results.length }, 'ports checked');

  const findings = findingsOf(results, full ? spec.expect : spec.expect?.filter((p) => ports.includes(p)));
  for (const f of findings) jobLog.step(`finding: ${f.message}`);
  const open = results.filter((r) => r.open).map(({ port, latencyMs, tls: t }) => (full ? { port, latencyMs, tls: t ?? null } : { port, latencyMs }));
  const closed = results.filter((r) => !r.open).map(({ port, latencyMs, error }) => ({ port, latencyMs, reason: error }));
  const result: ScanResult = {
    scanId: recordId,
    serverId: server.id,
    scanType: full ? 'full' : 'quick',
    host: server.host,
    address,
    resolveMs,
    reachable: open.length > 0,
    open,
    closed,
    findings,
  };
  await deps.records.finish('scan', recordId, 'completed', result);
  progress.milestone(90);
  return result;
};
