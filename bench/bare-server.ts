/** B0: a bare Fastify route returning a small JSON object, nothing else (no logging, no auth). */
import Fastify from 'fastify';

const app = Fastify();
app.get('/', async () => ({ success: true, data: { ok: 1 } }));
await app.listen({ port: Number(process.env.PORT), host: process.env.HOST ?? '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
