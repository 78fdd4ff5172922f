import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, BulkInvalidError, isRedisConnectionError, isRedisFullError, RETRY_AFTER_SECONDS, ServiceUnavailableError, type ItemError } from '../errors.js';
import { NotReplicatedError } from '../store/replication.js';

type Envelope = { success: false; error: { code: string; message: string; details?: ItemError[] }; requestId: string };

function send(
  reply: FastifyReply,
  request: FastifyRequest,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  details?: ItemError[],
) {
  const body: Envelope = { success: false, error: details ? { code, message, details } : { code, message }, requestId: String(request.id) };
  return reply.code(status).headers(headers).send(body);
}

/** "body.data.serverId: Invalid input: expected string, received undefined" */
function validationMessage(err: FastifyError): string {
  const context = err.validationContext ?? 'request';
  const issues = (err.validation ?? []).slice(0, 5).map((v) => {
    const where = [context, ...String(v.instancePath ?? '').split('/').filter(Boolean)].join('.');
    return `${where}: ${v.message}`;
  });
  return issues.join('; ') || err.message;
}

const FASTIFY_CODES: Record<string, [string, string?]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE', 'The request body is larger than 1 MiB.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['INVALID_JSON', 'The body is not valid JSON.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['BAD_REQUEST', 'Content-Length does not match the body.'],
};

/** Errors the router raises before any hook runs (so before x-request-id is set). */
const ROUTER_CODES: Record<string, [number, string, string]> = {
  FST_ERR_BAD_URL: [400, 'BAD_URL', 'The URL is not valid: it holds a malformed percent-encoding (a "%" must be followed by two hex digits of UTF-8).'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'URI_TOO_LONG', 'A part of the path is too long (at most 100 characters): no id of this API is that long.'],
};

/**
 * Fastify's `frameworkErrors`: what the router refuses (a malformed
 * percent-encoding, an over-long path part) answers with the error envelope
 * and x-request-id like every other error.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const [status, code, message] = ROUTER_CODES[err.code] ?? [err.statusCode ?? 400, 'BAD_REQUEST', err.message];
  reply.header('x-request-id', request.id);
  void send(reply, request, status, code, message);
}

/**
 * One error shape for the whole API. 4xx keep their message; a 500 says
 * nothing about internals (the details go to the log); Redis trouble is a 503
 * with Retry-After.
 */
export const errorHandlerPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      if (err instanceof BulkInvalidError) return send(reply, request, 400, err.code, err.message, err.headers, err.details);
      if (err instanceof AppError) return send(reply, request, err.statusCode, err.code, err.message, err.headers);
      if (err instanceof NotReplicatedError) return send(reply, request, 503, 'NOT_REPLICATED', err.message, { 'retry-after': String(RETRY_AFTER_SECONDS) });
      if (hasZodFastifySchemaValidationErrors(err)) return send(reply, request, 400, 'VALIDATION_ERROR', validationMessage(err));
      if (err.validation) return send(reply, request, 400, 'VALIDATION_ERROR', validationMessage(err));
      const known = err.code ? FASTIFY_CODES[err.code] : undefined;
      if (known) return send(reply, request, err.statusCode ?? 400, known[0], known[1] ?? err.message);
      if (isRedisFullError(err)) {
        request.log.warn({ err: err.message }, 'redis is full');
        return send(reply, request, 503, 'REDIS_FULL', 'Redis is out of memory (maxmemory) and refuses new data; try again later.', { 'retry-after': String(RETRY_AFTER_SECONDS) });
      }
      if (isRedisConnectionError(err)) {
        const e = new ServiceUnavailableError();
        request.log.warn({ err: err.message }, 'redis unavailable');
        return send(reply, request, e.statusCode, e.code, e.message, e.headers);
      }
      const status = err.statusCode ?? 500;
      if (status >= 400 && status < 500) {
        return send(reply, request, status, status === 429 ? 'TOO_MANY_REQUESTS' : 'BAD_REQUEST', err.message);
      }
      request.log.error({ err }, 'unhandled error');
      return send(reply, request, 500, 'INTERNAL_ERROR', 'An unexpected error occurred; the request id identifies it in the server log.');
    });

    app.setNotFoundHandler((request, reply) =>
      send(reply, request, 404, 'ROUTE_NOT_FOUND', `There is no route ${request.method} ${request.url.split('?')[0]}.`),
    );
  },
  { name: 'error-handler' },
);
