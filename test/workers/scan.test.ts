import net from 'node:net';
import tls from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, waitForJob } from '../helpers.js';

const H = auth({ tenant: 'ops' });
const DAY = 24 * 3600 * 1000;

/** A TLS server with a self-signed certificate for CN=jobs-api-test, valid from `from` to `to`. */
async function tlsServer(from: Date, to: Date): Promise<tls.Server> {
  const pems = await generate([{ name: 'commonName', value: 'jobs-api-test' }], { notBeforeDate: from, notAfterDate: to, keySize: 2048, algorithm: 'sha256' });
  const srv = tls.createServer({ key: pems.private, cert: pems.cert }, (s) => {
    s.on('error', () => {});
    s.end('hello over TLS\n');
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return srv;
}

async function plainServer(): Promise<net.Server> {
  // Speaks first, like SSH; the scanner's TLS hello gets a reset, which is this server's business.
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.end('SSH-2.0-OpenSSH_9.2\r\n');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return srv;
}

async function closedPort(): Promise<number> {
  const srv = await plainServer();
  const port = portOf(srv);
  await new Promise((r) => srv.close(r));
  return port;
}

const portOf = (srv: net.Server) => (srv.address() as net.AddressInfo).port;

type Scan = {
  scanId: string;
  status: string;
  scanType: string;
  open: Array<{ port: number; tls: null | { subject: string; issuer: string; daysLeft: number; selfSigned: boolean; trusted: boolean; trustError: string | null; validTo: string } }>;
  closed: Array<{ port: number; reason: string }>;
  findings: Array<{ kind: string; port: number; message: string; daysLeft?: number }>;
};

describe('scans: certificates and expectations', () => {
  let app: FastifyInstance;
  let soon: tls.Server;
  let expired: tls.Server;
  let plain: net.Server;
  let closed: number;

  beforeAll(async () => {
    const now = Date.now();
    soon = await tlsServer(new Date(now - 30 * DAY), new Date(now + 5 * DAY + 3600_000));
    expired = await tlsServer(new Date(now - 30 * DAY), new Date(now - 2 * DAY));
    plain = await plainServer();
    closed = await closedPort();
    app = await makeApp({
      servers: [
        {
          id: 'web',
          tenant: 'ops',
          host: '127.0.0.1',
          // The closed port is only in `expect`: a full scan checks it too.
          scan: { ports: [portOf(soon), portOf(plain), portOf(expired)], expect: [portOf(soon), portOf(expired), closed], timeoutMs: 2000 },
        },
      ],
    });
  });
  afterAll(async () => {
    await app.close();
    for (const s of [soon, expired, plain]) s.close();
  });

  const scan = async (scan_type: 'full' | 'quick') => {
    const res = await app.inject({ method: 'POST', url: '/api/servers/web/scan', headers: H, payload: { scan_type } });
    expect(res.statusCode).toBe(202);
    const job = await waitForJob(app, res.json().data.jobId);
    expect(job.state).toBe('completed');
    return job;
  };

  it('scan:full reads the certificate of each TLS port and reports findings against scan.expect', async () => {
    const job = await scan('full');
    const r = job.result as Scan;
    const byPort = new Map(r.open.map((o) => [o.port, o]));
    expect([...byPort.keys()].sort()).toEqual([portOf(soon), portOf(plain), portOf(expired)].sort());

    const cert = byPort.get(portOf(soon))!.tls!;
    expect(cert).toMatchObject({ subject: 'CN=jobs-api-test', issuer: 'CN=jobs-api-test', selfSigned: true, trusted: false });
    expect(cert.daysLeft).toBe(5);
    expect(cert.trustError).toMatch(/SELF_SIGNED|self.signed/i);
    expect(byPort.get(portOf(plain))!.tls).toBeNull();
    expect(byPort.get(portOf(expired))!.tls!.daysLeft).toBeLessThan(0);
    expect(r.closed).toEqual([expect.objectContaining({ port: closed, reason: 'ECONNREFUSED' })]);

    const kinds = r.findings.map((f) => [f.kind, f.port]).sort();
    expect(kinds).toEqual(
      [
        ['certificate-expiring', portOf(soon)],
        ['certificate-expired', portOf(expired)],
        ['expected-port-closed', closed],
        ['unexpected-port-open', portOf(plain)],
      ].sort(),
    );
    expect(r.findings.find((f) => f.kind === 'certificate-expiring')).toMatchObject({ daysLeft: 5, message: expect.stringMatching(/expires in 5 days/) });

    const log = (await app.inject({ url: `/api/jobs/${job.id}/logs`, headers: H })).json().data.lines as string[];
    expect(log).toContain(`[jobs-api] port ${closed} closed (ECONNREFUSED)`);
    expect(log.some((l) => l.startsWith(`[jobs-api] port ${portOf(soon)} open`) && l.includes('CN=jobs-api-test'))).toBe(true);
    expect(log.some((l) => l.startsWith('[jobs-api] finding: port') && l.includes('not in scan.expect'))).toBe(true);
  });

  it('GET /api/servers/:id/scans lists recent scans newest first, for the server\'s tenant only', async () => {
    await scan('quick');
    const res = await app.inject({ url: '/api/servers/web/scans', headers: H });
    expect(res.statusCode).toBe(200);
    const list = res.json().data as Scan[];
    expect(list.map((s) => s.scanType)).toEqual(['quick', 'full']);
    expect(list[0]).toMatchObject({ status: 'completed', findings: [] });
    expect(list[1]!.findings).toHaveLength(4);
    expect((await app.inject({ url: '/api/servers/web/scans?limit=1', headers: H })).json().data).toHaveLength(1);
    expect((await app.inject({ url: '/api/servers/web/scans?limit=0', headers: H })).statusCode).toBe(400);
    const other = await app.inject({ url: '/api/servers/web/scans', headers: auth({ tenant: 'someone-else' }) });
    expect(other.statusCode).toBe(404);
  });
});
