import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeOrCheck } from './generated-file.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The OpenAPI document the models are generated from (itself generated from the routes' zod schemas). */
export const OPENAPI_SOURCE = path.join(ROOT, 'openapi', 'openapi.json');

/**
 * clients/python/jobs_api/models.py: the `data` of every JSON answer of the
 * OpenAPI document, as frozen Python dataclasses (attributes in snake_case,
 * the API's names kept in each field's metadata for decoding). Generated and
 * checked for drift like openapi/openapi.json, from that very document, so the
 * Python package types exactly what the routes declare.
 */
export const MODELS_FILE = path.join(ROOT, 'clients', 'python', 'jobs_api', 'models.py');

/**
 * The name of each route's model (of its `data`, or of the items when `data` is a list), in the order the
 * file declares them. A route missing here still gets a model, named after its operationId or its path; a
 * model already declared under another name (same shape) is reused.
 */
export const ROUTE_MODELS: ReadonlyArray<[route: string, model: string]> = [
  ['GET /health', 'Health'],
  ['GET /ready', 'Ready'],
  ['GET /api/jobs/{id}', 'Job'],
  ['POST /api/jobs', 'Submitted'],
  ['POST /api/jobs/bulk', 'BulkSubmitted'],
  ['GET /api/jobs', 'JobPage'],
  ['GET /api/jobs/stats/all', 'JobStats'],
  ['GET /api/jobs/{id}/logs', 'LogPage'],
  ['DELETE /api/jobs/{id}', 'JobRemoved'],
  ['POST /api/jobs/{id}/retry', 'JobRetried'],
  ['POST /api/jobs/{id}/cancel', 'CancelOutcome'],
  ['POST /api/jobs/{id}/stream-ticket', 'StreamTicket'],
  ['GET /api/servers/{id}', 'Server'],
  ['GET /api/servers', 'ServerPage'],
  ['POST /api/servers/{id}/backup', 'BackupStarted'],
  ['POST /api/servers/{id}/scan', 'ScanStarted'],
  ['POST /api/servers/{id}/update', 'UpdateStarted'],
  ['GET /api/servers/{id}/backups', 'Backup'],
  ['POST /api/servers/{id}/backups/{backupId}/restore', 'RestoreStarted'],
  ['GET /api/servers/{id}/restores', 'Restore'],
  ['DELETE /api/servers/{id}/restores/{restoreId}', 'RestoreRemoved'],
  ['GET /api/servers/{id}/scans', 'ScanRecord'],
  ['GET /api/schedules', 'Schedule'],
  ['DELETE /api/schedules/{id}', 'ScheduleRemoved'],
  ['GET /api/dead-letters', 'DeadLetterPage'],
  ['GET /api/dead-letters/errors', 'ErrorSummary'],
  ['POST /api/dead-letters/replay', 'Replayed'],
  ['GET /api/queues', 'QueueStatus'],
  ['POST /api/queues/{queue}/drain', 'Drained'],
  ['POST /api/queues/{queue}/clean', 'Cleaned'],
  ['GET /api/queues/{queue}/stuck', 'StuckJobs'],
  ['POST /api/queues/{queue}/unstick', 'Unstuck'],
  ['POST /api/queues/{queue}/retry', 'QueueRetried'],
  ['GET /api/metrics/queues', 'QueueMetrics'],
  ['GET /api/metrics/system', 'SystemMetrics'],
  ['GET /api/workers', 'WorkerStatus'],
  ['GET /api/tenants/stats', 'TenantStats'],
  ['GET /api/tenants/{tenant}/limits', 'TenantLimit'],
];

/**
 * Names of nested parts, by where they first sit: `Model.key` (an object), `Model.key[]` (a list's items),
 * `Model.key{}` (a map's values). Without one, a part is named by its zod description when that is a name
 * (`Job`, `Finding`), else after where it sits (`ServerBackup`).
 */
const PART_NAMES: Readonly<Record<string, string>> = {
  'ScanResult.open[]': 'OpenPort',
  'ScanResult.closed[]': 'ClosedPort',
  'OpenPort.tls': 'TlsInfo',
  'JobStats.backup': 'QueueCounts',
  'Replayed.replayed[]': 'ReplayedJob',
  'Replayed.skipped[]': 'SkippedJob',
  'ErrorSummary.groups[]': 'ErrorGroup',
  'QueueStatus.rateLimit': 'RateLimit',
  'Drained.removed': 'DrainedCounts',
  'QueueMetrics.health': 'QueueHealth',
  'SystemMetrics.process': 'ProcessInfo',
  'SystemMetrics.redis': 'RedisInfo',
  'SystemMetrics.workers': 'WorkersInfo',
  'WorkerStatus.queues': 'WorkerQueues',
  'WorkerQueues.backup': 'WorkerQueueStats',
  'WorkerStatus.processes[]': 'WorkerProcess',
  'WorkerProcess.queues{}': 'WorkerProcessQueue',
  'TenantStats.queues': 'TenantQueues',
  'TenantQueues.backup': 'TenantQueueCounts',
  'TenantLimit.throttle': 'TenantThrottle',
  'QueueConcurrency.processes[]': 'ProcessConcurrency',
};

/** Literal types that get a name of their own (and keep it wherever the same values appear). */
const LITERAL_NAMES: Readonly<Record<string, string>> = {
  'Job.queue': 'QueueName',
  'Job.type': 'JobType',
  'Job.state': 'JobState',
  'HoldReason.code': 'HoldCode',
};

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  $ref?: string;
  description?: string;
  additionalProperties?: boolean | JsonSchema;
  content?: Record<string, { schema?: JsonSchema }>;
};

type OpenApi = {
  paths: Record<string, Record<string, { operationId?: string; responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }> }>>;
  components?: { schemas?: Record<string, JsonSchema> };
};

const PYTHON_KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(' '),
);
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

const pascal = (s: string) => s.replace(/(^|[^A-Za-z0-9])([A-Za-z0-9])/g, (_, _sep: string, c: string) => c.toUpperCase());
/** jobId → job_id, maxmemoryPolicy → maxmemory_policy, from → from_. */
export function snake(key: string): string {
  const s = key
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();
  return PYTHON_KEYWORDS.has(s) || /^\d/.test(s) ? `${s}_` : s;
}

function literal(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  throw new Error(`no Python literal for ${JSON.stringify(v)}`);
}

/** The shape of a schema, without what does not change the Python type (descriptions, bounds, examples). */
function shape(s: unknown): string {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      if (['description', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'examples', 'example', 'default', 'format', 'title'].includes(k)) continue;
      out[k] = strip(val);
    }
    return out;
  };
  return JSON.stringify(strip(s));
}

/** Writes Python dataclasses (and Literal aliases) for JSON Schemas, naming each shape once. */
class PythonWriter {
  private readonly classes: string[] = [];
  private readonly aliases: string[] = [];
  private readonly byShape = new Map<string, string>();
  private readonly literals = new Map<string, string>();
  private readonly taken = new Set<string>();
  private readonly routesOf = new Map<string, string[]>();
  private readonly docs = new Map<string, string>();

  constructor(private readonly components: Record<string, JsonSchema>) {}

  /** The Python type of a route's `data`: declares what it needs. */
  route(route: string, name: string, data: JsonSchema): string {
    const type = data.type === 'array' && data.items ? `List[${this.type(data.items, name, name)}]` : this.type(data, name, name);
    const model = /^(?:List\[)?(\w+)\]?$/.exec(type)?.[1];
    if (model && this.taken.has(model)) this.routesOf.set(model, [...(this.routesOf.get(model) ?? []), route]);
    return type;
  }

  private unique(name: string): string {
    let n = name;
    for (let i = 2; this.taken.has(n); i += 1) n = `${name}${i}`;
    this.taken.add(n);
    return n;
  }

  /** `where`: the part's address for PART_NAMES/LITERAL_NAMES; `fallback`: its name when nothing else names it. */
  private type(s: JsonSchema, where: string, fallback: string): string {
    if (s.$ref) {
      const id = s.$ref.replace(/^#\/components\/schemas\//, '');
      const def = this.components[id];
      if (!def) return 'Any';
      const name = this.type({ ...def, description: id }, id, id);
      this.docs.set(name, `A completed job's result, when its type is of this family (components/schemas/${id} of the OpenAPI document).`);
      return name;
    }
    const union = s.anyOf ?? s.oneOf;
    if (union) {
      const parts = union.map((u, i) => this.type(u, where, union.length > 1 && i > 0 ? `${fallback}${i + 1}` : fallback));
      const nonNull = [...new Set(parts.filter((p) => p !== 'None'))];
      const inner = nonNull.length === 1 ? nonNull[0]! : `Union[${nonNull.join(', ')}]`;
      return parts.includes('None') ? (nonNull.length ? `Optional[${inner}]` : 'None') : inner;
    }
    if (s.const !== undefined) return `Literal[${literal(s.const)}]`;
    if (s.enum) return this.literal(s.enum, where);
    const t = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
    if (t.length > 1) return this.type({ anyOf: t.map((type) => ({ ...s, type })) }, where, fallback);
    switch (t[0]) {
      case 'string':
        return 'str';
      case 'integer':
        return 'int';
      case 'number':
        return 'float';
      case 'boolean':
        return 'bool';
      case 'null':
        return 'None';
      case 'array':
        return `List[${s.items ? this.type(s.items, `${where}[]`, `${fallback}Item`) : 'Any'}]`;
      case 'object':
        if (s.properties) return this.object(s, where, fallback);
        if (typeof s.additionalProperties === 'object') return `Dict[str, ${this.type(s.additionalProperties, `${where}{}`, `${fallback}Value`)}]`;
        return 'Dict[str, Any]';
      default:
        return 'Any';
    }
  }

  private literal(values: unknown[], where: string): string {
    const type = `Literal[${values.map(literal).join(', ')}]`;
    const known = this.literals.get(type);
    if (known) return known;
    const name = LITERAL_NAMES[where];
    if (!name) return type;
    this.literals.set(type, name);
    this.aliases.push(`${name} = ${type}`);
    return name;
  }

  /** A frozen dataclass: required fields first (dataclasses want defaults last), each optional one defaulting to None. */
  private object(s: JsonSchema, where: string, fallback: string): string {
    const key = shape(s);
    const known = this.byShape.get(key);
    if (known) return known;
    const described = s.description && /^[A-Z][A-Za-z0-9]*$/.test(s.description) ? s.description : undefined;
    const name = this.unique(PART_NAMES[where] ?? described ?? fallback);
    this.byShape.set(key, name);
    const required = new Set(s.required ?? []);
    const fields = Object.entries(s.properties ?? {}).map(([json, prop]) => {
      const attr = snake(json);
      const type = this.type(prop, `${name}.${json}`, `${name}${pascal(json)}`);
      const must = required.has(json);
      const meta = attr === json ? '' : `metadata={"json": ${JSON.stringify(json)}}`;
      const rhs = must ? (meta ? ` = field(${meta})` : '') : meta ? ` = field(default=None, ${meta})` : ' = None';
      const optional = must || type.startsWith('Optional[') || type === 'Any' || type === 'None' ? type : `Optional[${type}]`;
      return { must, line: `    ${attr}: ${optional}${rhs}` };
    });
    const lines = [...fields.filter((f) => f.must), ...fields.filter((f) => !f.must)].map((f) => f.line);
    this.classes.push(`@dataclass(frozen=True)\nclass ${name}(Model):\n@@DOC ${name}@@\n${lines.join('\n') || '    pass'}\n`);
    return name;
  }

  render(): string {
    const doc = (name: string) => {
      const routes = this.routesOf.get(name);
      const text = routes ? `The data of ${routes.join(', ')}.` : this.docs.get(name);
      return text ? `    """${text}"""` : '';
    };
    const classes = this.classes.map((c) => c.replace(/^@@DOC (\w+)@@\n/m, (_, name: string) => (doc(name) ? `${doc(name)}\n` : '')));
    const exported = [...this.aliases.map((a) => a.split(' ')[0]!), ...classes.map((c) => /^class (\w+)/m.exec(c)![1]!)];
    return [
      '"""The Jobs API\'s answers as Python types: the `data` of every JSON answer of openapi/openapi.json.',
      '',
      'Generated by `npm run models:generate` from that document (itself generated from the routes\' zod schemas);',
      'do not edit by hand (`npm run models:check` fails when it drifts). Attributes are the API\'s field names in',
      'snake_case (`jobId` is `job_id`); `Model.to_dict()` gives the API\'s JSON back and `Model.from_dict()` reads it.',
      '"""',
      '',
      'from dataclasses import dataclass, field',
      'from typing import Any, Dict, List, Literal, Optional, Union',
      '',
      'from ._model import Model',
      '',
      `__all__ = [${exported.map((n) => JSON.stringify(n)).join(', ')}]`,
      '',
      ...this.aliases,
      '',
      '',
      classes.join('\n\n'),
    ].join('\n');
  }
}

/** The 2xx JSON answer's `data` schema of an operation, if it has one. */
function dataSchema(op: OpenApi['paths'][string][string]): JsonSchema | undefined {
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    if (!status.startsWith('2')) continue;
    const data = response.content?.['application/json']?.schema?.properties?.data;
    if (data) return data;
  }
  return undefined;
}

/** The Python module, as the OpenAPI document (`doc`, default the committed one) declares the answers today. */
export function generatePythonModels(doc: OpenApi = JSON.parse(readFileSync(OPENAPI_SOURCE, 'utf8')) as OpenApi): string {
  const w = new PythonWriter(doc.components?.schemas ?? {});
  const operations = Object.entries(doc.paths).flatMap(([p, ops]) =>
    METHODS.filter((m) => ops[m]).map((m) => ({ route: `${m.toUpperCase()} ${p}`, op: ops[m]! })),
  );
  const order = new Map(ROUTE_MODELS.map(([route], i) => [route, i]));
  operations.sort((a, b) => (order.get(a.route) ?? order.size) - (order.get(b.route) ?? order.size));
  const named = new Map(ROUTE_MODELS);
  for (const { route, op } of operations) {
    const data = dataSchema(op);
    if (!data) continue;
    const name = named.get(route) ?? pascal(op.operationId ?? route.toLowerCase().replace(/[{}]/g, ''));
    w.route(route, name, data);
  }
  return w.render();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  writeOrCheck(MODELS_FILE, generatePythonModels(), process.argv[2], 'npm run models:generate');
}
