/**
 * Baseline (a) of the schedule bench: a plain Fastify route that answers a
 * static 202 with a run-shaped body. What HTTP + Fastify cost on this machine.
 * Env: PORT.
 */
import Fastify from 'fastify';

const BODY = JSON.stringify({
  id: '0193a1b2-0000-7000-8000-000000000000',
  tenant_id: '0193a1b2-0000-7000-8000-000000000001',
  dataset_id: '0193a1b2-0000-7000-8000-000000000002',
  eval_version_id: '0193a1b2-0000-7000-8000-000000000003',
  status: 'pending',
  item_count: 100,
  completed_count: 0,
  started_at: null,
  completed_at: null,
  error_message: null,
  created_at: '2026-01-01T00:00:00.000Z',
  dataset_version_id: '0193a1b2-0000-7000-8000-000000000004',
  passed_count: 0,
  failed_count: 0,
  error_count: 0,
  mean_score: null,
  usage: { prompt_tokens: 0, completion_tokens: 0 },
  cost_usd: null,
});

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post('/v1/datasets/:id/runs', async (_req, reply) => reply.status(202).header('content-type', 'application/json; charset=utf-8').send(BODY));

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
