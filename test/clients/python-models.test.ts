import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generatePythonModels, MODELS_FILE } from '../../src/cli/python-models.js';
import { tmpDir } from '../tmp.js';

describe('the Python client\'s models (clients/python/jobs_api_models.py)', () => {
  it('match what the job contract\'s schemas generate (run `npm run models:generate` after changing src/jobs)', () => {
    expect(readFileSync(MODELS_FILE, 'utf8') === generatePythonModels(), 'clients/python/jobs_api_models.py is out of date').toBe(true);
  });

  it('name every family\'s data and result, with the fields the schemas declare', () => {
    const py = readFileSync(MODELS_FILE, 'utf8');
    for (const name of ['Backup', 'Restore', 'Scan', 'Update']) {
      expect(py).toMatch(new RegExp(`^class ${name}Input\\(`, 'm'));
      expect(py).toMatch(new RegExp(`^class ${name}Result\\(`, 'm'));
    }
    expect(py).toMatch(/^ {4}findings: List\[Finding\]$/m);
    expect(py).toMatch(/^ {4}state: Literal\["waiting", "active", "completed", "failed", "delayed"\]$/m);
  });

  it('type-check with mypy (--strict for the models), and so do the client and its tests that use them', async () => {
    const cache = tmpDir('mypy-cache');
    const mypy = (args: string[]) =>
      new Promise<{ code: number; output: string }>((resolve) => {
        execFile('mypy', ['--cache-dir', cache, ...args], { cwd: path.resolve('clients/python'), timeout: 120_000 }, (err, stdout, stderr) => {
          if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') resolve({ code: -1, output: 'mypy is not on PATH: apt-get install mypy (.ci/run installs it)' });
          else resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
        });
      });
    const strict = await mypy(['--strict', 'jobs_api_models.py']);
    expect(strict.code, strict.output).toBe(0);
    const client = await mypy(['jobs_api_client.py', 'test_jobs_api_client.py']);
    expect(client.code, client.output).toBe(0);
  }, 150_000);
});
