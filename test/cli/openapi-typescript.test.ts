import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import { describe, expect, it } from 'vitest';
import { OPENAPI_FILE } from '../../src/cli/openapi.js';
import { tmpDir } from '../tmp.js';

const tsc = path.resolve('node_modules/typescript/bin/tsc');

/** Typecheck `program` against the generated types; answers tsc's complaints ('' when it compiles). */
async function typecheck(dir: string, name: string, program: string): Promise<string> {
  writeFileSync(path.join(dir, name), program);
  try {
    await promisify(execFile)(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--skipLibCheck', path.join(dir, name)]);
    return '';
  } catch (err) {
    return (err as { stdout: string }).stdout;
  }
}

// What a team using a generator gets from openapi/openapi.json: named operations and typed bodies.
describe('openapi/openapi.json for code generators', () => {
  const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as { paths: Record<string, Record<string, { operationId?: string; responses: Record<string, { content?: object }> }>> };

  it('names every operation, once', () => {
    const ids = Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).map(([method, op]) => [op.operationId, `${method} ${p}`] as const));
    expect(ids.filter(([id]) => !id).map(([, where]) => where)).toEqual([]);
    const seen = new Set<string>();
    expect(ids.filter(([id]) => (seen.has(id!) ? true : (seen.add(id!), false)))).toEqual([]);
    expect(Object.keys(doc.paths['/api/jobs/{id}/events']!.get!.responses['200']!.content!)).toEqual(['text/event-stream']);
  });

  it('generates TypeScript types (openapi-typescript) that a small program typechecks against', async () => {
    const dir = tmpDir('openapi-ts');
    writeFileSync(path.join(dir, 'api.d.ts'), astToString(await openapiTS(new URL(`file://${OPENAPI_FILE}`))));
    const ok = `
import type { operations, paths } from './api.js';
type Job = operations['getJob']['responses'][200]['content']['application/json']['data'];
type Submit = NonNullable<paths['/api/jobs']['post']['requestBody']>['content']['application/json'];
const submit: Submit = { type: 'scan:quick', data: { serverId: 'web-1' }, options: { priority: 3 } };
const show = (job: Job): string => job.id + ' ' + job.state + ' ' + String(job.progress);
type Page = operations['listJobs']['responses'][200]['content']['application/json']['data'];
const next = (page: Page): string | null => page.nextCursor;
export { submit, show, next };
`;
    expect(await typecheck(dir, 'ok.ts', ok)).toBe('');
    // The types say no to what the API would refuse: a job type that does not exist, a field a job lacks.
    const wrong = `
import type { operations, paths } from './api.js';
type Submit = NonNullable<paths['/api/jobs']['post']['requestBody']>['content']['application/json'];
const submit: Submit = { type: 'scan:everything', data: { serverId: 'web-1' } };
type Job = operations['getJob']['responses'][200]['content']['application/json']['data'];
const owner = (job: Job): string => job.owner;
export { submit, owner };
`;
    const complaints = await typecheck(dir, 'wrong.ts', wrong);
    expect(complaints).toContain('"scan:everything"');
    expect(complaints).toContain("Property 'owner' does not exist");
  }, 60_000);
});
