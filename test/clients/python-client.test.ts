import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeApp, tmpDir, token } from '../helpers.js';

const node = process.execPath;

function python(): string {
  for (const bin of ['python3', 'python']) {
    try {
      execFileSync(bin, ['-c', 'import sys; assert sys.version_info >= (3, 8)'], { stdio: 'ignore' });
      return bin;
    } catch {
      // try the next
    }
  }
  throw new Error('the Python client tests need python3 (3.8 or newer) on PATH; .ci/run installs it');
}

describe('the Python client (clients/python), its unittest suite against a live server', () => {
  let app: FastifyInstance;
  let url: string;
  const source = tmpDir('py-backup');

  beforeAll(async () => {
    mkdirSync(path.join(source, 'site'));
    writeFileSync(path.join(source, 'site', 'index.html'), '<h1>py</h1>');
    app = await makeApp({
      servers: [
        { id: 'py-scan', tenant: 'py', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'py-fail', tenant: 'py', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: nope'); process.exit(5)"] } },
        {
          id: 'py-slow',
          tenant: 'py',
          host: '127.0.0.1',
          update: { command: [node, '-e', "let i = 0; const t = setInterval(() => { i += 1; console.log('PROGRESS ' + i * 25); if (i === 4) clearInterval(t); }, 600)"], timeoutSec: 60 },
        },
        { id: 'py-backup', tenant: 'py', host: '127.0.0.1', backup: { paths: [path.join(source, 'site')] } },
      ],
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());

  it('passes', async () => {
    // Spawned, not run synchronously: the server in this process must keep answering.
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        python(),
        ['-m', 'unittest', '-v', 'test_jobs_api_client'],
        {
          cwd: path.resolve('clients/python'),
          timeout: 240_000,
          env: {
            ...process.env,
            JOBS_API_URL: url,
            JOBS_API_TOKEN: token({ sub: 'py', tenant: 'py' }),
            JOBS_TEST_SCAN: 'py-scan',
            JOBS_TEST_FAIL: 'py-fail',
            JOBS_TEST_SLOW: 'py-slow',
            JOBS_TEST_BACKUP: 'py-backup',
            PYTHONDONTWRITEBYTECODE: '1',
          },
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
      );
    });
    expect(result.code, result.output).toBe(0);
    expect(result.output).toMatch(/Ran \d+ tests/);
    expect(result.output).not.toMatch(/skipped/);
  }, 300_000);
});
