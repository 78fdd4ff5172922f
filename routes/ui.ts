import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { jobIdParams } from '../src/http/schemas.js';
import { loadUiFiles, UI_ASSETS } from '../src/http/ui-files.js';

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
  const { page, assets } = loadUiFiles();
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/ui/jobs/:id',
    { schema: { hide: true, params: jobIdParams } },
    async (_request, reply) => reply.headers(HEADERS).type('text/html; charset=utf-8').send(page),
  );
  for (const name of Object.keys(UI_ASSETS) as Array<keyof typeof UI_ASSETS>) {
    r.get(`/ui/assets/${name}`, { schema: { hide: true } }, async (_request, reply) => reply.headers(HEADERS).type(UI_ASSETS[name]).send(assets[name]));
  }
}
