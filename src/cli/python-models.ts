import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { jobResultName, jobViewSchema } from '../http/schemas.js';
import { writeOrCheck } from './generated-file.js';
import { closedPortSchema, findingSchema, JOB_FAMILIES, openPortSchema, tlsInfoSchema } from '../jobs/index.js';

/** Parts of the results that get a name of their own in Python (the rest are named after where they sit). */
const NAMED_PARTS: ReadonlyArray<[string, z.ZodType]> = [
  ['TlsInfo', tlsInfoSchema],
  ['OpenPort', openPortSchema],
  ['ClosedPort', closedPortSchema],
  ['Finding', findingSchema],
];

/**
 * clients/python/jobs_api_models.py: the job contract's zod schemas (each
 * family's input and result, and the job view) as Python TypedDicts, so the
 * Python client types what the API sends with the very schemas the routes
 * validate and the processors return. Generated and checked for drift like
 * openapi/openapi.json.
 */
export const MODELS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'clients', 'python', 'jobs_api_models.py');

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
  $defs?: Record<string, JsonSchema>;
  description?: string;
  additionalProperties?: boolean | JsonSchema;
};

const pascal = (s: string) => s.replace(/(^|[^A-Za-z0-9])([A-Za-z0-9])/g, (_, _sep: string, c: string) => c.toUpperCase());
function literal(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  throw new Error(`no Python literal for ${JSON.stringify(v)}`);
}

/** Writes Python TypedDicts for JSON Schemas, naming nested objects after where they sit. */
class PythonWriter {
  private readonly classes: string[] = [];
  private readonly named = new Map<string, string>();
  private defs: Record<string, JsonSchema> = {};

  private readonly parts = z.registry<{ id: string }>();

  constructor(named: ReadonlyArray<[string, z.ZodType]>) {
    for (const [id, schema] of named) this.parts.add(schema, { id });
  }

  add(name: string, schema: z.ZodType, doc: string): void {
    const json = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any', metadata: this.parts, cycles: 'ref', reused: 'inline' }) as JsonSchema;
    this.defs = { ...this.defs, ...json.$defs };
    this.object(name, json, doc);
  }

  private type(s: JsonSchema, where: string): string {
    if (s.$ref) {
      const id = s.$ref.replace(/^#\/\$defs\//, '');
      const def = this.defs[id];
      if (!def) return 'Any';
      return this.named.get(id) ?? (def.type === 'object' && def.properties ? this.object(pascal(id), def, def.description ?? '', id) : this.type(def, pascal(id)));
    }
    const union = s.anyOf ?? s.oneOf;
    if (union) {
      const parts = union.map((u, i) => this.type(u, union.length > 1 ? `${where}${i === 0 ? '' : i + 1}` : where));
      const nonNull = [...new Set(parts.filter((p) => p !== 'None'))];
      const inner = nonNull.length === 1 ? nonNull[0]! : `Union[${nonNull.join(', ')}]`;
      return parts.includes('None') ? `Optional[${inner}]` : inner;
    }
    if (s.const !== undefined) return `Literal[${literal(s.const)}]`;
    if (s.enum) return `Literal[${s.enum.map(literal).join(', ')}]`;
    const t = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
    if (t.length > 1) return this.type({ anyOf: t.map((type) => ({ ...s, type })) }, where);
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
        return `List[${s.items ? this.type(s.items, `${where}Item`) : 'Any'}]`;
      case 'object':
        return s.properties ? this.object(where, s, s.description ?? '') : 'Dict[str, Any]';
      default:
        return 'Any';
    }
  }

  /** A TypedDict (and a base class for the required keys when some are optional: `total=False` works from Python 3.8). */
  private object(name: string, s: JsonSchema, doc: string, defId?: string): string {
    if (defId) this.named.set(defId, name);
    const required = new Set(s.required ?? []);
    const fields = Object.entries(s.properties ?? {}).map(([key, prop]) => {
      const comment = prop.description ? `  # ${prop.description.replace(/\s+/g, ' ')}` : '';
      return { key, required: required.has(key), line: `    ${key}: ${this.type(prop, `${name}${pascal(key)}`)}${comment}` };
    });
    const docLine = doc ? `    """${doc.replace(/"""/g, "'''")}"""\n` : '';
    const must = fields.filter((f) => f.required);
    const may = fields.filter((f) => !f.required);
    if (may.length === 0) {
      this.classes.push(`class ${name}(TypedDict):\n${docLine}${must.map((f) => f.line).join('\n') || '    pass'}\n`);
    } else {
      this.classes.push(`class _${name}Required(TypedDict):\n${must.map((f) => f.line).join('\n') || '    pass'}\n`);
      this.classes.push(`class ${name}(_${name}Required, total=False):\n${docLine}${may.map((f) => f.line).join('\n')}\n`);
    }
    return name;
  }

  render(): string {
    const exported = this.classes.map((c) => /^class (\w+)/.exec(c)![1]!).filter((n) => !n.startsWith('_'));
    return [
      '"""The Jobs API\'s data, as Python types. Generated from the zod schemas of src/jobs/ and src/http/schemas.ts',
      'by `npm run models:generate`; do not edit by hand (`npm run models:check` fails when it drifts)."""',
      '',
      'from typing import Any, Dict, List, Literal, Optional, TypedDict, Union',
      '',
      `__all__ = [${exported.map((n) => JSON.stringify(n)).join(', ')}]`,
      '',
      '',
      this.classes.join('\n\n'),
    ].join('\n');
  }
}

/** The Python module, as the schemas declare it today. */
export function generatePythonModels(): string {
  const w = new PythonWriter(NAMED_PARTS);
  for (const family of JOB_FAMILIES) {
    const name = pascal(family.name);
    w.add(`${name}Input`, family.input, `The data of a ${family.types.join(' / ')} job, defaults applied (Job["data"]).`);
    w.add(jobResultName(family), family.result, `What a completed ${family.types.join(' / ')} job holds in "result".`);
  }
  w.add('Job', jobViewSchema, 'A job as GET /api/jobs/{id} answers it ("result" is one of the *Result types once completed).');
  return w.render();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  writeOrCheck(MODELS_FILE, generatePythonModels(), process.argv[2], 'npm run models:generate');
}
