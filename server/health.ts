/**
 * GET /healthz (the process serves) and GET /readyz (Postgres, Redis,
 * migrations and, when workers run in the process, their heartbeat; 503
 * naming the failed check). Shared by the API and by a worker's small HTTP
 * server (server/worker-http.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Workers } from '../jobs/registry.ts';
import type { Container } from './container.ts';
import { withDeadline } from './deadline.ts';

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
    check('postgres', () => container.orm.em.fork().getConnection().execute('select 1')),
    check('redis', async () => {
      if ((await container.redis.ping()) !== 'PONG') throw new Error('no PONG');
    }),
    check('migrations', async () => {
      const pending = await container.pendingMigrations();
      if (pending > 0) throw new Error(`${pending} pending`);
    }),
  ]);
  const checks: Record<string, string> = { postgres, redis, migrations };
  if (workers) {
    const age = Date.now() - workers.lastHeartbeat();
    const limit = Math.max(3 * container.env.RECONCILE_INTERVAL_MS, 60_000);
    checks.workers = age <= limit ? 'ok' : `failed: no heartbeat for ${Math.round(age / 1000)} s`;
  }
  return checks;
}
