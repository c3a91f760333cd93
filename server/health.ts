/**
 * GET /healthz (the process serves) and GET /readyz (Postgres, Redis,
 * migrations and, when workers run in the process, their Redis connection and
 * heartbeat; 503 naming the failed check). Shared by the API and by a
 * worker's small HTTP server (server/worker-http.ts).
 *
 * The Redis check writes, not pings: a PING is answered by a read-only
 * replica, by a cluster node that owns none of the queues' slots and by a
 * master cut off from its cluster, none of which can take a job.
 */
import type { FastifyInstance } from 'fastify';
import type { Workers } from './workers.ts';
import type { Container } from './container.ts';
import { withDeadline } from '../domain/shared/deadline.ts';
import { sql } from '../domain/shared/sql.ts';

const CHECK_TIMEOUT_MS = 1_500;

export function registerHealth(app: FastifyInstance, container: Container, workers?: Workers): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const checks = await readiness(container, workers);
    const ok = Object.values(checks).every((c) => c === 'ok');
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks });
  });
}

/** Each check bounded, so a dependency that never answers is a failed check, not a hung probe. */
async function readiness(container: Container, workers?: Workers): Promise<Record<string, string>> {
  const check = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await withDeadline(fn(), CHECK_TIMEOUT_MS, what);
      return 'ok';
    } catch (err) {
      return `failed: ${(err as Error).message}`;
    }
  };
  const [postgres, redis, migrations] = await Promise.all([
    check('postgres', () => sql(container.orm.em.fork(), 'select 1')),
    check('redis', () => canWriteQueueSlots(container)),
    check('migrations', async () => {
      const pending = await container.pendingMigrations();
      if (pending > 0) throw new Error(`${pending} pending`);
    }),
  ]);
  const checks: Record<string, string> = { postgres, redis, migrations };
  if (workers) {
    checks.worker_redis = await check('worker redis', async () => {
      // the workers' connection queues commands while it is away: ask only once it says it is connected
      if (workers.redis.status !== 'ready') throw new Error(`connection ${workers.redis.status}`);
      if ((await workers.redis.ping()) !== 'PONG') throw new Error('no PONG');
    });
    const age = Date.now() - workers.lastHeartbeat();
    const limit = Math.max(3 * container.env.RECONCILE_INTERVAL_MS, 60_000);
    checks.workers = age <= limit ? 'ok' : `failed: no heartbeat for ${Math.round(age / 1000)} s`;
  }
  return checks;
}

/**
 * A short-lived SET in every queue's own slot (the queue prefix's hash tag on a cluster): fails while the node
 * that owns it is a replica (READONLY), unreachable, or not the owner (MOVED: a cluster addressed as one server).
 */
async function canWriteQueueSlots(container: Container): Promise<void> {
  await Promise.all(
    container.queues.all().map(async (q) => {
      try {
        await container.redis.set(`${container.queuePrefix(q.name)}:${q.name}:readyz`, '1', 'PX', 10_000);
      } catch (err) {
        const msg = (err as Error).message;
        throw new Error(/^MOVED|^ASK|CLUSTERDOWN/.test(msg) && container.redisTopology.mode !== 'cluster' ? `${msg} (a Redis Cluster: set REDIS_CLUSTER_NODES)` : msg);
      }
    }),
  );
}
