import { execFile } from 'node:child_process';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';

export const JOBSCTL = path.resolve('bin/jobsctl.js');

export type Ran = { code: number; stdout: string; stderr: string };

/**
 * jobsctl against a test's listening app, the way a script runs it (stdin and
 * stdout are pipes, not a terminal), and the API called directly to set the
 * scene. `app` and `url` are read when called: tests make them in beforeAll.
 */
export function jobsctlAgainst(target: { app: () => FastifyInstance; url: () => string; token: string }) {
  function run(args: string[], env: Record<string, string> = {}): Promise<Ran> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [JOBSCTL, ...args],
        { env: { ...process.env, JOBS_API_URL: target.url(), JOBS_API_TOKEN: target.token, NO_COLOR: '', ...env }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
  }
  /** A command with --json that must succeed: its answer, parsed. */
  async function json(args: string[]) {
    const r = await run(['--json', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  }
  /** The API itself, with the same token: the answer's data, after checking it succeeded. */
  async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', route: string, payload?: unknown) {
    const res = await target.app().inject({ method, url: route, headers: { authorization: `Bearer ${target.token}` }, ...(payload !== undefined ? { payload: payload as object } : {}) });
    expect(res.statusCode, res.body).toBeLessThan(300);
    return res.json().data;
  }
  return { run, json, call };
}
