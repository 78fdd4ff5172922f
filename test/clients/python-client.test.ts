import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeApp, tmpDir, token } from '../helpers.js';

const node = process.execPath;
const SOURCE = path.resolve('clients/python');
const TESTS = path.join(SOURCE, 'tests');

type Run = { code: number; stdout: string; stderr: string };

/** A child process, awaited: the API under test runs in this process and must keep answering meanwhile. */
function run(bin: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeout ?? 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr: stderr + (err && code === -1 ? err.message : '') });
    });
  });
}

/** The environment without PYTHONPATH, so that only the installed package can be imported. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { PYTHONPATH: _, JOBS_API_URL: _url, JOBS_API_TOKEN: _token, ...rest } = process.env;
  return { ...rest, PYTHONDONTWRITEBYTECODE: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1', ...extra };
}

async function python(): Promise<string> {
  for (const bin of ['python3', 'python']) {
    if ((await run(bin, ['-c', 'import sys; assert sys.version_info >= (3, 9)'])).code === 0) return bin;
  }
  throw new Error('the Python client tests need python3 (3.9 or newer) on PATH; .ci/run installs it');
}

describe('the Python package (clients/python): installed offline into a fresh venv, its suite against a live server', () => {
  let app: FastifyInstance;
  let url: string;
  const source = tmpDir('py-backup');
  const venv = tmpDir('py-venv');
  const bin = (name: string) => path.join(venv, 'bin', name);
  let installed: Promise<Run>;

  beforeAll(async () => {
    // `pip install ./clients/python` as a user runs it, with no package index at all: the build backend is
    // in the package (pyproject.toml requires nothing), so neither setuptools nor wheel is fetched.
    installed = (async () => {
      const made = await run(await python(), ['-m', 'venv', venv], { env: cleanEnv() });
      if (made.code !== 0) return made;
      return run(bin('python'), ['-m', 'pip', 'install', '--no-index', '--no-cache-dir', SOURCE], { env: cleanEnv({ PIP_NO_INDEX: '1' }), timeout: 240_000 });
    })();
    mkdirSync(path.join(source, 'site'));
    writeFileSync(path.join(source, 'site', 'index.html'), '<h1>py</h1>');
    app = await makeApp({
      // The Python tests' webhook receiver listens on loopback.
      env: { WEBHOOK_ALLOW_PRIVATE: 'on', WEBHOOK_BACKOFF_BASE_MS: '100' },
      servers: [
        { id: 'py-scan', tenant: 'py', host: '127.0.0.1', scan: { ports: [1], timeoutMs: 200 } },
        { id: 'py-fail', tenant: 'py', host: '127.0.0.1', update: { command: [node, '-e', "console.error('E: nope'); process.exit(5)"] } },
        {
          id: 'py-slow',
          tenant: 'py',
          host: '127.0.0.1',
          update: { command: [node, '-e', "let i = 0; const t = setInterval(() => { i += 1; console.log('PROGRESS ' + i * 25); if (i === 4) clearInterval(t); }, 600)"], timeoutSec: 60 },
        },
        // Runs until cancelled: for waits that time out, cancellations and stuck jobs.
        { id: 'py-long', tenant: 'py', host: '127.0.0.1', update: { command: [node, '-e', "console.log('PROGRESS 10'); setTimeout(() => {}, 300000)"], timeoutSec: 600 } },
        { id: 'py-backup', tenant: 'py', host: '127.0.0.1', backup: { paths: [path.join(source, 'site')] } },
      ],
    });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  }, 60_000);
  afterAll(() => app.close());

  it('installs with pip from the checkout with no index and no wheel package: jobsapi, the package, py.typed', async () => {
    const install = await installed;
    expect(install.code, install.stdout + install.stderr).toBe(0);
    expect(install.stdout).toMatch(/Successfully installed jobs-api-client-\d+\.\d+\.\d+/);
    // The venv has no `wheel` to lean on: the in-tree backend wrote the wheel itself.
    expect((await run(bin('python'), ['-c', 'import wheel'], { env: cleanEnv() })).code).not.toBe(0);

    const help = await run(bin('jobsapi'), ['--help'], { env: cleanEnv() });
    expect(help.code, help.stderr).toBe(0);
    for (const command of ['submit', 'get', 'wait', 'watch', 'logs', 'cancel', 'retry', 'remove', 'list']) expect(help.stdout).toContain(`    ${command} `);
    expect(help.stdout).toContain('4 the job failed or was cancelled');
    expect((await run(bin('python'), ['-m', 'jobs_api', '--version'], { env: cleanEnv() })).stdout).toMatch(/^jobsapi \d+\.\d+\.\d+/);

    const cwd = tmpDir('py-import');
    const imported = await run(
      bin('python'),
      [
        '-c',
        [
          'import importlib.metadata as m, os, jobs_api, jobs_api_client',
          'print(jobs_api.__file__)',
          'print(m.version("jobs-api-client") == jobs_api.__version__)',
          'print(os.path.isfile(os.path.join(os.path.dirname(jobs_api.__file__), "py.typed")))',
          'print(sorted(e.name for e in m.entry_points(group="console_scripts") if e.value.startswith("jobs_api")))',
        ].join('\n'),
      ],
      { cwd, env: cleanEnv() },
    );
    expect(imported.code, imported.stderr).toBe(0);
    const [file, version, typed, scripts] = imported.stdout.trim().split('\n');
    expect(file!.startsWith(venv), file).toBe(true);
    expect([version, typed, scripts]).toEqual(['True', 'True', "['jobsapi']"]);

    // The scripting contract: no token is a usage error (2), an unreachable API is 8.
    expect((await run(bin('jobsapi'), ['get', 'scan_x'], { env: cleanEnv() })).code).toBe(2);
    expect((await run(bin('jobsapi'), ['frobnicate'], { env: cleanEnv({ JOBS_API_TOKEN: 't' }) })).code).toBe(2);
  }, 300_000);

  it('passes its unittest suite against the live server, importing the installed package', async () => {
    const install = await installed;
    expect(install.code, install.stdout + install.stderr).toBe(0);
    expect(existsSync(bin('jobsapi'))).toBe(true);
    const result = await run(bin('python'), ['-m', 'unittest', 'discover', '-v', '-s', TESTS, '-t', TESTS], {
      cwd: tmpDir('py-run'),
      timeout: 420_000,
      env: cleanEnv({
        JOBS_API_URL: url,
        JOBS_API_TOKEN: token({ sub: 'py', tenant: 'py' }),
        JOBS_TEST_ADMIN_TOKEN: token({ sub: 'py-admin', tenant: 'py', scope: 'admin' }),
        JOBS_TEST_SCAN: 'py-scan',
        JOBS_TEST_FAIL: 'py-fail',
        JOBS_TEST_SLOW: 'py-slow',
        JOBS_TEST_LONG: 'py-long',
        JOBS_TEST_BACKUP: 'py-backup',
        JOBS_API_EXPECT_INSTALLED: venv,
      }),
    });
    const output = result.stdout + result.stderr;
    expect(result.code, output).toBe(0);
    const ran = Number(/Ran (\d+) tests/.exec(output)?.[1] ?? 0);
    expect(ran, output).toBeGreaterThanOrEqual(70);
    expect(output).not.toMatch(/skipped/);
    expect(output).toContain('test_every_method_of_jobs_api_is_on_async_jobs_api_with_the_same_parameters');
    expect(output).toContain('test_the_tests_import_the_installed_package');
  }, 480_000);
});
