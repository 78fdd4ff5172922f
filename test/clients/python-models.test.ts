import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatePythonModels, MODELS_FILE, OPENAPI_SOURCE, ROUTE_MODELS } from '../../src/cli/python-models.js';
import { tmpDir } from '../tmp.js';

const CLIENT = path.resolve('clients/python');
const PACKAGE = path.join(CLIENT, 'jobs_api');
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** Every operation of the committed OpenAPI document, as `METHOD /path`. */
function operations(): string[] {
  const doc = JSON.parse(readFileSync(OPENAPI_SOURCE, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths).flatMap(([p, ops]) => METHODS.filter((m) => ops[m]).map((m) => `${m.toUpperCase()} ${p}`));
}

describe('the Python package\'s models (clients/python/jobs_api/models.py) and its coverage of the API', () => {
  it('match what openapi/openapi.json generates (run `npm run models:generate` after changing a route or src/jobs)', () => {
    expect(readFileSync(MODELS_FILE, 'utf8') === generatePythonModels(), 'clients/python/jobs_api/models.py is out of date').toBe(true);
  });

  it('are frozen dataclasses for every family\'s result, the job and each route\'s answer, with the API\'s names kept', () => {
    const py = readFileSync(MODELS_FILE, 'utf8');
    for (const name of ['BackupResult', 'RestoreResult', 'ScanResult', 'UpdateResult', 'Job', ...ROUTE_MODELS.map(([, model]) => model)]) {
      expect(py).toMatch(new RegExp(`^@dataclass\\(frozen=True\\)\\nclass ${name}\\(Model\\):$`, 'm'));
    }
    expect(py).toMatch(/^JobState = Literal\["waiting", "active", "completed", "failed", "delayed", "cancelled"\]$/m);
    expect(py).toMatch(/^ {4}state: JobState$/m);
    expect(py).toMatch(/^ {4}max_attempts: int = field\(metadata=\{"json": "maxAttempts"\}\)$/m);
    expect(py).toMatch(/^ {4}result: Optional\[Union\[BackupResult, RestoreResult, ScanResult, UpdateResult\]\]$/m);
    expect(py).toMatch(/^ {4}findings: List\[Finding\]$/m);
    expect(py).toMatch(/^ {4}from_: str = field\(metadata=\{"json": "from"\}\)$/m);
  });

  it('has a call for every route of the OpenAPI document, and names no route the document lacks', () => {
    const source = readdirSync(PACKAGE)
      // models.py names the routes whose answers its classes are ("The data of GET ..."): that is no call.
      .filter((f) => f.endsWith('.py') && f !== 'models.py')
      .map((f) => readFileSync(path.join(PACKAGE, f), 'utf8'))
      .join('\n');
    const routes = operations();
    // _endpoints.py names each route in its call's docstring ("""GET /api/jobs"""); the event stream is JobsApi.watch.
    const covered = (route: string) => new RegExp(`(^|[\\s("])${route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=["\\s).,])`, 'm').test(source);
    expect(routes.filter((r) => !covered(r)), 'routes with no call in clients/python/jobs_api').toEqual([]);
    expect(routes.length).toBeGreaterThan(45);
    expect(ROUTE_MODELS.map(([route]) => route).filter((r) => !routes.includes(r)), 'ROUTE_MODELS (src/cli/python-models.ts) names routes that are gone').toEqual([]);
  });

  it('type-check with mypy --strict, for Python 3.9 and this one: the package, its build backend, the compatibility module, its tests, examples/backup.py', async () => {
    const cache = tmpDir('mypy-cache');
    const mypy = (args: string[]) =>
      new Promise<{ code: number; output: string }>((resolve) => {
        execFile('mypy', ['--cache-dir', cache, ...args], { cwd: CLIENT, timeout: 240_000 }, (err, stdout, stderr) => {
          if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') resolve({ code: -1, output: 'mypy is not on PATH: apt-get install mypy (.ci/run installs it)' });
          else resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
        });
      });
    const files = ['jobs_api', 'jobs_api_client.py', '_build/jobs_api_build.py', 'tests', path.resolve('examples/backup.py')];
    const oldest = await mypy(['--strict', '--python-version', '3.9', ...files]);
    expect(oldest.code, oldest.output).toBe(0);
    expect(oldest.output).toMatch(/Success: no issues found in \d+ source files/);
    const current = await mypy(['--strict', ...files]);
    expect(current.code, current.output).toBe(0);
  }, 300_000);
});
