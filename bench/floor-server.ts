/**
 * F1: the least an HTTP enqueue costs on this stack. A bare Fastify route that
 * takes the job's data and calls BullMQ's queue.add with the product's job
 * options, and nothing else: no token, no validation, no inventory or tenant
 * check, no index, no fair admission, no quota, no rate limit, no log.
 */
import Fastify from 'fastify';
import { Queue } from 'bullmq';
import { createRedis } from '../src/redis/connection.js';
import { DEFAULT_JOB_OPTIONS, QUEUES } from '../src/jobs/index.js';

const redis = createRedis(process.env.REDIS_URL!, 'producer', 'bench-floor');
const queue = new Queue(QUEUES.scan.redisName, { connection: redis, prefix: process.env.QUEUE_PREFIX ?? 'f1', defaultJobOptions: DEFAULT_JOB_OPTIONS });
const app = Fastify();
app.get('/', async () => ({ ok: 1 }));
app.post('/', async (request, reply) => {
  const { data } = request.body as { data: unknown };
  const job = await queue.add('scan:quick', { tenant: 'default', requestedBy: 'bench', recordId: 'r', input: data }, { priority: QUEUES.scan.defaultPriority });
  reply.code(202);
  return { success: true, data: { id: job.id } };
});
await app.listen({ port: Number(process.env.PORT), host: process.env.HOST ?? '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
