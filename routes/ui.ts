import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { jobIdParams } from '../src/http/schemas.js';

/** ui/ at the repository's root: one level up from routes/, two from dist/routes/. */
function uiDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const found = [path.join(here, '..', 'ui'), path.join(here, '..', '..', 'ui')].find((d) => existsSync(path.join(d, 'job.html')));
  if (!found) throw new Error(`the live page's files (ui/job.html) are missing next to ${here}`);
  return found;
}

const ASSETS = { 'job.js': 'text/javascript; charset=utf-8', 'job.css': 'text/css; charset=utf-8' } as const;

/** Nothing from elsewhere, no frames, no referrer: the page holds a bearer token. */
const HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

/**
 * The live page of a job, for a browser: static files shipped in ui/, read once
 * (no build step). The page asks the API itself, with the token the user gives it.
 */
export default async function uiRoutes(app: FastifyInstance): Promise<void> {
  const dir = uiDir();
  const page = readFileSync(path.join(dir, 'job.html'));
  const assets = Object.fromEntries(Object.keys(ASSETS).map((name) => [name, readFileSync(path.join(dir, name))]));
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/ui/jobs/:id',
    { schema: { hide: true, params: jobIdParams } },
    async (_request, reply) => reply.headers(HEADERS).type('text/html; charset=utf-8').send(page),
  );
  for (const [name, type] of Object.entries(ASSETS)) {
    r.get(`/ui/assets/${name}`, { schema: { hide: true } }, async (_request, reply) => reply.headers(HEADERS).type(type).send(assets[name]));
  }
}
