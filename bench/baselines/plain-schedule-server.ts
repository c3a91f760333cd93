/**
 * Baseline (b) of the schedule bench: POST /v1/datasets/:id/runs written by
 * hand on plain Fastify + `pg` + BullMQ, no tRPC, no ORM, no auth lookup, no
 * rate limit, no cap check: the same INSERT … RETURNING as insertPendingRun
 * (domain/eval-runs/eval-run.service.ts) and the same run-start enqueue
 * (same job options and job id, same 2 s bound), the same response mapping.
 * The floor under evalgate's schedule path on this machine.
 * Env: PORT, DATABASE_URL, DATABASE_POOL_MAX, REDIS_URL, EVALGATE_QUEUE_PREFIX, TENANT_ID.
 */
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { jobOptions, QUEUE_NAMES } from '../../jobs/queues.ts';
import { EVAL_RUN_COLUMNS, toEvalRunDto, type EvalRunRow } from '../../domain/eval-runs/eval-run.mapper.ts';

const env = process.env;
const tenantId = env.TENANT_ID as string;
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: Number(env.DATABASE_POOL_MAX ?? 20) });
// the producer settings of server/redis.ts (createRedis with role 'producer'), without its retry strategy
const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000 });
const runStart = new Queue(QUEUE_NAMES.runStart, { connection: redis, prefix: env.EVALGATE_QUEUE_PREFIX });
const opts = jobOptions({ chunkAttempts: 8 }).runStart;

const INSERT = `with ds as (
       select d.id as dataset_id, v.id as version_id, v.item_count
         from datasets d
         join dataset_versions v on v.dataset_id = d.id and v.version = d.latest_version
        where d.id = $1 and d.tenant_id = $2
     ), ev as (
       select id from eval_versions where id = $3 and tenant_id = $4
     )
     insert into eval_runs (id, tenant_id, dataset_id, dataset_version_id, eval_version_id, status, item_count,
                            completed_count, passed_count, failed_count, error_count, score_sum, created_at, updated_at)
     select $5, $6, ds.dataset_id, ds.version_id, ev.id, 'pending', ds.item_count, 0, 0, 0, 0, 0, now(), now()
       from ds, ev
     returning ${EVAL_RUN_COLUMNS}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function enqueue(runId: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      runStart.add(QUEUE_NAMES.runStart, { run_id: runId }, { ...opts, jobId: runId }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('enqueue timed out')), 2_000);
      }),
    ]);
  } catch {
    // as evalgate: the run stays pending and a reconciler would pick it up
  } finally {
    clearTimeout(timer);
  }
}

const app = Fastify({ logger: false });
app.get('/healthz', async () => ({ status: 'ok' }));
app.post<{ Params: { id: string }; Body: { eval_version_id?: unknown } }>('/v1/datasets/:id/runs', async (req, reply) => {
  if (!req.headers.authorization?.startsWith('Bearer ')) return reply.status(401).send({ error: 'missing credentials' });
  const evalVersionId = req.body?.eval_version_id;
  if (!UUID.test(req.params.id) || typeof evalVersionId !== 'string' || !UUID.test(evalVersionId)) {
    return reply.status(400).send({ error: 'invalid input' });
  }
  const runId = uuidv7();
  const { rows } = await pool.query<EvalRunRow>(INSERT, [req.params.id, tenantId, evalVersionId, tenantId, runId, tenantId]);
  const row = rows[0];
  if (!row) return reply.status(404).send({ error: 'dataset or eval version not found' });
  await enqueue(row.id);
  return reply.status(202).send(toEvalRunDto(row));
});

await app.listen({ port: Number(env.PORT ?? 0), host: '127.0.0.1' });
const stop = () =>
  void (async () => {
    await app.close();
    await runStart.close();
    redis.disconnect();
    await pool.end();
    process.exit(0);
  })();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
