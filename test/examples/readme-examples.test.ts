import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, makeApp, token } from '../helpers.js';

const README = readFileSync('README.md', 'utf8');

/** The fenced block right after each `<!-- example: FILE -->` marker of the README. */
function readmeExamples(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of README.matchAll(/<!-- example: (\S+) -->\n```\w*\n([\s\S]*?)\n```/g)) out.set(m[1]!, m[2]!);
  return out;
}

describe('the README\'s examples, run against a live server', () => {
  let app: FastifyInstance;
  let env: Record<string, string>;

  beforeAll(async () => {
    // The shipped inventory, which the examples are written for.
    const shipped = JSON.parse(readFileSync('config/servers.json', 'utf8')).servers;
    app = await makeApp({ servers: shipped, baseDir: path.resolve('config') });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const admin = token({ ...ADMIN, sub: 'readme' });
    env = { ...process.env, API: url, TOKEN: admin, JOBS_API_URL: url, JOBS_API_TOKEN: admin, PYTHONPATH: path.resolve('clients/python') };
  });
  afterAll(() => app.close());

  const run = (bin: string, file: string) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(bin, [file], { env, timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });

  it('shows every file of examples/ exactly as it is', () => {
    const shown = readmeExamples();
    expect([...shown.keys()].sort()).toEqual(['examples/backup.py', 'examples/python-cli.sh', 'examples/tour.sh', 'examples/wait-for-job.sh', 'examples/watch-events.sh']);
    for (const [file, block] of shown) expect(block, file).toBe(readFileSync(file, 'utf8').replace(/\n$/, ''));
  });

  it('tour.sh runs from start to end', async () => {
    const r = await run('bash', 'examples/tour.sh');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/scan scan_\S+, backup backup_\S+, update update_\S+/);
    expect(r.stdout).toContain(path.join(app.config.dataDir, 'restores'));
    expect(r.stdout).toContain('update command exited with code 3');
    expect(r.stdout).toContain('"outcome":"removed"');
  }, 150_000);

  it('a refused request prints the error envelope and stops the script (curl --fail-with-body, set -e)', async () => {
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile('bash', ['examples/tour.sh'], { env: { ...env, TOKEN: 'not-a-token' }, timeout: 60_000 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }));
    });
    expect(r.code).toBe(22);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ success: false, error: { code: 'TOKEN_INVALID' } });
  });

  it('wait-for-job.sh waits for the backup and says it completed', async () => {
    const r = await run('bash', 'examples/wait-for-job.sh');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^backup backup_\S+ completed$/m);
  }, 150_000);

  it('watch-events.sh prints the events of an update until it completes', async () => {
    const r = await run('bash', 'examples/watch-events.sh');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^event: snapshot$/m);
    expect(r.stdout).toContain('"line":"nothing to upgrade"');
    expect(r.stdout.trim().split('\n\n').at(-1)).toMatch(/^event: completed\nid: \d+-end\ndata: \{/);
  }, 150_000);

  it('backup.py backs up with the Python package (jobs_api) and reads the events', async () => {
    const r = await run('python3', 'examples/backup.py');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^progress 100\.0$/m);
    expect(r.stdout).toMatch(/^backup [0-9a-f-]{36} sha256 [0-9a-f]{64}$/m);
    expect(r.stdout).toMatch(/^snapshot $/m);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^completed\s*$/);
  }, 150_000);

  it('python-cli.sh chains on the jobsapi command\'s exit codes', async () => {
    const r = await run('bash', 'examples/python-cli.sh');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^scan scan_\S+ done$/m);
    const listed = r.stdout.trim().split('\n').slice(-2).map((line) => JSON.parse(line) as { queue: string });
    expect(listed.map((job) => job.queue)).toEqual(['scan', 'scan']);
  }, 150_000);
});
