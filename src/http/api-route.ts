import type { FastifyRequest } from 'fastify';

/**
 * Whether a request goes to the API (`/api/...`), judged by the route it was
 * given, not by its raw URL: `/%61pi/jobs` is routed to `/api/jobs` and must
 * be treated (rate-limited, refused while Redis is away) as it is.
 */
export function isApiRoute(request: FastifyRequest): boolean {
  return (request.routeOptions.url ?? request.url).startsWith('/api/');
}
