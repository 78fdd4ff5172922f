import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { WEBHOOK_EVENTS } from '../src/services/webhooks.js';
import { errors, okEnvelope } from '../src/http/schemas.js';

const eventSchema = z.enum(WEBHOOK_EVENTS);

const bodySchema = z.strictObject({
  url: z.string().min(1).max(2048).describe('where deliveries are POSTed: http or https; not a loopback, link-local or private address unless the server allows it'),
  events: z
    .array(eventSchema)
    .min(1)
    .max(WEBHOOK_EVENTS.length)
    .describe('job.completed; job.failed (failed for good, not an attempt that is retried); job.cancelled (a running job stopped, or one removed before it started); job.progress'),
});

const webhookSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(eventSchema),
    createdAt: z.string(),
    previousSecretExpiresAt: z.string().nullable().describe('after a rotation: until when the previous secret also signs (ISO 8601), else null'),
  })
  .describe('Webhook');

const secretSchema = z.string().describe('`whsec_` and base64 of 32 bytes: shown once, keep it to verify `webhook-signature`');

const deliverySchema = z
  .object({
    id: z.string().describe('the delivery\'s `webhook-id`, the same on every attempt'),
    event: eventSchema,
    jobId: z.string(),
    attempt: z.number().int().describe('1 for the first attempt'),
    status: z.enum(['delivered', 'retrying', 'failed']).describe('retrying: this attempt failed and another comes; failed: it failed for good'),
    statusCode: z.number().int().nullable().describe('the receiver\'s HTTP status, null when there was no answer'),
    error: z.string().nullable(),
    at: z.string(),
    durationMs: z.number().int(),
  })
  .describe('WebhookDeliveryAttempt');

const idParams = z.object({ id: z.string().min(1).max(100).describe('the webhook id (`wh_…`)') });

export default async function webhookRoutes(fastify: FastifyInstance) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const read = app.requireScope('jobs:read');
  const write = app.requireScope('jobs:write');
  const security = [{ bearerAuth: [] }];
  const tags = ['webhooks'];

  app.post(
    '',
    {
      onRequest: write,
      schema: {
        operationId: 'createWebhook',
        tags,
        summary: 'Register an endpoint that receives your jobs\' events',
        description:
          'Deliveries follow the Standard Webhooks specification: headers `webhook-id`, `webhook-timestamp` and `webhook-signature`, body `{ type, timestamp, data: { jobId, type, state, result | failedReason | progress } }`. The answer shows the secret once. A URL that is not http(s) is a 400 INVALID_WEBHOOK_URL; one on a loopback, link-local or private address a 400 WEBHOOK_ADDRESS_REFUSED (unless the server sets WEBHOOK_ALLOW_PRIVATE=on); beyond TENANT_MAX_WEBHOOKS a 429 TOO_MANY_WEBHOOKS.',
        security,
        body: bodySchema,
        response: { 201: okEnvelope(webhookSchema.extend({ secret: secretSchema })), ...errors(400, 401, 403, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const created = await app.webhooks.create(request.principal, request.body);
      reply.code(201).header('location', `/api/webhooks/${created.id}`);
      return { success: true as const, data: created };
    },
  );

  app.get(
    '',
    {
      onRequest: read,
      schema: { operationId: 'listWebhooks', tags, summary: 'Your tenant\'s webhooks (never their secrets)', security, response: { 200: okEnvelope(z.array(webhookSchema)), ...errors(401, 403, 503) } },
    },
    async (request) => ({ success: true as const, data: await app.webhooks.list(request.principal) }),
  );

  app.get(
    '/:id',
    {
      onRequest: read,
      schema: { operationId: 'getWebhook', tags, summary: 'One of your webhooks', security, params: idParams, response: { 200: okEnvelope(webhookSchema), ...errors(401, 403, 404, 503) } },
    },
    async (request) => ({ success: true as const, data: await app.webhooks.get(request.principal, request.params.id) }),
  );

  app.delete(
    '/:id',
    {
      onRequest: write,
      schema: {
        operationId: 'removeWebhook',
        tags,
        summary: 'Remove a webhook and its delivery log (deliveries not yet made are dropped)',
        security,
        params: idParams,
        response: { 200: okEnvelope(z.object({ id: z.string(), removed: z.literal(true) })), ...errors(401, 403, 404, 503) },
      },
    },
    async (request) => {
      await app.webhooks.remove(request.principal, request.params.id);
      return { success: true as const, data: { id: request.params.id, removed: true as const } };
    },
  );

  app.post(
    '/:id/rotate-secret',
    {
      onRequest: write,
      schema: {
        operationId: 'rotateWebhookSecret',
        tags,
        summary: 'Give a webhook a new secret; the previous one also signs for 24 hours',
        description: 'Until `previousSecretExpiresAt`, `webhook-signature` carries two signatures, one per secret, so receivers can switch without losing a delivery.',
        security,
        params: idParams,
        response: { 200: okEnvelope(z.object({ id: z.string(), secret: secretSchema, previousSecretExpiresAt: z.string() })), ...errors(401, 403, 404, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.webhooks.rotateSecret(request.principal, request.params.id) }),
  );

  app.get(
    '/:id/deliveries',
    {
      onRequest: read,
      schema: {
        operationId: 'listWebhookDeliveries',
        tags,
        summary: 'The webhook\'s delivery log: its latest 100 attempts, newest first',
        security,
        params: idParams,
        response: { 200: okEnvelope(z.array(deliverySchema)), ...errors(401, 403, 404, 503) },
      },
    },
    async (request) => ({ success: true as const, data: await app.webhooks.deliveries(request.principal, request.params.id) }),
  );
}
