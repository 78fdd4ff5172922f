import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, validatorCompiler } from 'fastify-type-provider-zod';
import { registerRoutes } from '../routes/index.js';
import { idempotencyPlugin } from './http/idempotency.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { prometheusPlugin } from './observability/prometheus.js';
import { rateLimitPlugin } from './http/rate-limit.js';
import { authPlugin, resolveJwtKey, type JwtKey } from './http/auth.js';
import type { Config } from './config.js';
import { errorHandlerPlugin, frameworkErrorHandler } from './http/error-handler.js';
import { loadInventory, type Inventory } from './inventory.js';
import { createLogger } from './logger.js';
import type { RedisTarget } from './redis/connection.js';
import { serializerCompiler } from './http/serializer.js';
import { jobResultComponents, linkJobResults } from './http/schemas.js';
import { servicesPlugin } from './plugins/services.js';
import { workersPlugin } from '../workers/plugin.js';

import { API_VERSION } from './version.js';
import { endOpenStreams } from './http/job-stream.js';
import { lingerOnEarlyAnswer } from './http/lingering-close.js';
export const BODY_LIMIT_BYTES = 1024 * 1024;

export type BuildOptions = {
  /** Skip Redis, queues and workers: routes and docs only (used to generate the OpenAPI document). */
  docsOnly?: boolean;
  inventory?: Inventory;
  jwtKey?: JwtKey;
  /** Overrides config.redis (the embedded Redis). */
  redis?: RedisTarget;
  /** A pino logger to use instead of one made from config.logLevel. */
  logger?: FastifyBaseLogger;
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Build the whole product for one configuration; tests build as many as they like. */
export async function buildApp(config: Config, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger ?? createLogger(config.logLevel),
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    forceCloseConnections: 'idle',
    // Time to receive a whole request (a slow or stalled sender gets 408); answering is bounded elsewhere
    // (REDIS_COMMAND_TIMEOUT_MS), and a long poll or an event stream, once received, is not cut by it.
    requestTimeout: config.requestTimeoutMs,
    // Node looks for such requests every 30 s by default: look often enough that the bound holds.
    http: { connectionsCheckingInterval: Math.min(5000, Math.ceil(config.requestTimeoutMs / 2)) },
    frameworkErrors: frameworkErrorHandler,
    // One log line per request (the onResponse hook below) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: any other body type is a 415, not a string that fails validation.
  // An empty JSON body counts as no body, so `POST …/retry` with a client that
  // always sends Content-Type: application/json still works.
  app.removeContentTypeParser(['text/plain', 'application/json']);
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text === '') return done(null, undefined);
    return parseJson(request, text, done);
  });
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  // An error answered before the body is read (413, 401...) reaches a client that sends the whole body first.
  app.addHook('onSend', lingerOnEarlyAnswer);
  // Event streams never end by themselves: end them so that closing does not wait for their clients.
  app.addHook('preClose', (done) => {
    endOpenStreams(app);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const line = { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (reply.statusCode >= 500) request.log.error(line, 'request failed');
    else request.log.info(line, 'request');
    done();
  });

  const inventory = opts.inventory ?? loadInventory(config.serversFile);
  app.decorate('config', config);
  app.decorate('inventory', inventory);

  await app.register(errorHandlerPlugin);
  await app.register(authPlugin, { config, key: opts.jwtKey ?? resolveJwtKey(config) });

  if (!opts.docsOnly) {
    const redis = opts.redis ?? config.redis;
    if (!redis) throw new Error('no Redis to connect to: set REDIS_URL or start the embedded Redis first');
    await app.register(servicesPlugin, { config, inventory, redis });
    if (config.workers) await app.register(workersPlugin, { config, inventory, redis });
    await app.register(idempotencyPlugin);
    await app.register(rateLimitPlugin);
    await app.register(prometheusPlugin);
  }
  if (!app.hasDecorator('workers')) app.decorate('workers', null);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Jobs API',
        version: API_VERSION,
        description:
          'Enqueue and watch backups, scans and updates of the servers in your inventory. ' +
          'Every /api route needs `Authorization: Bearer <JWT>`. Responses use the envelope ' +
          '`{ success, data }` or `{ success: false, error: { code, message }, requestId }`.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          streamTicket: { type: 'apiKey', in: 'query', name: 'ticket', description: 'POST /api/jobs/{id}/stream-ticket; opens that job\'s event stream only' },
        },
        schemas: jobResultComponents(),
      },
      tags: [
        { name: 'jobs', description: 'Enqueue, read, list, retry and remove jobs' },
        { name: 'servers', description: 'The server inventory, and jobs for one server' },
        { name: 'metrics', description: 'Queue counts and health' },
        { name: 'schedules', description: 'Cron schedules that enqueue jobs' },
        { name: 'dead letters', description: 'Jobs that failed for good: list, group, replay, remove' },
        { name: 'queues', description: 'Queue operations (admin): pause, resume, drain, clean, stuck jobs, bulk retry' },
        { name: 'workers', description: 'Worker processes and what they did' },
        { name: 'tenants', description: 'Per-tenant counts and fair-scheduling limits (admin)' },
        { name: 'webhooks', description: 'Endpoints that receive your jobs\' events (Standard Webhooks), and their delivery logs' },
        { name: 'health', description: 'Liveness and readiness probes' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: (doc) => ('openapiObject' in doc ? linkJobResults(doc.openapiObject) : doc.swaggerObject),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(registerRoutes);
  if (!opts.docsOnly) await app.register(dashboardPlugin);
  return app;
}
