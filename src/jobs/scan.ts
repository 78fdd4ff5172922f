import { z } from 'zod';
import { jobFamily, serverIdSchema } from './common.js';

export const scanDataSchema = z.strictObject({ serverId: serverIdSchema });
export type ScanData = z.output<typeof scanDataSchema>;

/** The certificate of a port that speaks TLS: read, not trusted. */
export const tlsInfoSchema = z.object({
  subject: z.string(),
  issuer: z.string(),
  validFrom: z.string(),
  validTo: z.string(),
  daysLeft: z.number().int().describe('days until the certificate expires; negative once expired'),
  selfSigned: z.boolean(),
  trusted: z.boolean().describe('whether the certificate chains to a CA this server trusts for the host name'),
  trustError: z.string().nullable(),
});
export type TlsInfo = z.output<typeof tlsInfoSchema>;

export const openPortSchema = z.object({
  port: z.number().int(),
  latencyMs: z.number(),
  tls: tlsInfoSchema.nullable().optional().describe('the certificate, when the port speaks TLS (scan:full)'),
});
export type OpenPort = z.output<typeof openPortSchema>;

export const closedPortSchema = z.object({ port: z.number().int(), latencyMs: z.number(), reason: z.string().optional() });
export type ClosedPort = z.output<typeof closedPortSchema>;

export const findingSchema = z
  .object({
    kind: z.enum(['expected-port-closed', 'unexpected-port-open', 'certificate-expiring', 'certificate-expired']),
    port: z.number().int(),
    message: z.string(),
    daysLeft: z.number().int().optional(),
  })
  .describe('Finding');
export type Finding = z.output<typeof findingSchema>;

const scanType = z.enum(['full', 'quick']);

/** What a completed scan:full / scan:quick job holds in `result`. */
export const scanResultSchema = z
  .object({
    scanId: z.string(),
    serverId: z.string(),
    scanType,
    host: z.string(),
    address: z.string().describe('the address the host resolved to'),
    resolveMs: z.number().int().describe('milliseconds the name resolution took'),
    reachable: z.boolean().describe('whether any port checked is open'),
    open: z.array(openPortSchema),
    closed: z.array(closedPortSchema),
    findings: z.array(findingSchema),
  })
  .describe('A completed scan: the ports checked, open or closed, and what an operator should know');
export type ScanResult = z.output<typeof scanResultSchema>;

/** A scan as GET /api/servers/{id}/scans lists it: its record, with the result's fields once it completed. */
export const scanRecordSchema = z
  .object({
    scanId: z.string(),
    jobId: z.string(),
    status: z.enum(['running', 'completed', 'failed']),
    createdAt: z.string(),
    finishedAt: z.string().nullable(),
    scanType: scanType.nullable(),
    reachable: z.boolean().nullable(),
    open: z.array(openPortSchema),
    closed: z.array(closedPortSchema),
    findings: z.array(findingSchema),
    error: z.string().nullable().describe('why the scan failed'),
  })
  .describe('ScanRecord');
export type ScanRecord = z.output<typeof scanRecordSchema>;

export const scanFamily = jobFamily({
  name: 'scan',
  queue: 'scan',
  types: ['scan:full', 'scan:quick'],
  input: scanDataSchema,
  result: scanResultSchema,
});
