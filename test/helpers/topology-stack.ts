/**
 * evalgate on a disposable Redis topology, in this test process: a container
 * (producer connection), the workers (their own connection) and the HTTP API
 * on port 0, all built from one environment through loadEnv, exactly as
 * server/main.ts builds them. PostgreSQL is the machine's, a fresh database
 * per stack (testEnv); it is never the one faulted here.
 */
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { expect } from 'vitest';
import { startWorkers, type Workers } from '../../server/workers.ts';
import { createContainer, type Container } from '../../server/container.ts';
import { dropDatabase } from '../../server/db.ts';
import { loadEnv, type Env } from '../../server/env.ts';
import { buildApp, type App } from '../../server/http.ts';
import { assertExactlyOnce } from './exactly-once.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from './factories.ts';
import { FAST_RECOVERY_ENV } from './processes.ts';
import { api, scheduleRun, waitForProgress } from './runs.ts';
import { testEnv, waitFor } from './stack.ts';

export interface TopologyStack {
  env: Env;
  container: Container;
  workers: Workers;
  app: App;
  baseUrl: string;
  tenant: TenantFixture;
  evalVersionId: string;
  readyz(): Promise<{ status: number; body: { checks: Record<string, string> } }>;
  close(): Promise<void>;
}

export async function startEvalgate(extra: Record<string, string>): Promise<TopologyStack> {
  // a 40 ms chunk: a run lasts long enough to be interrupted mid-way
  const env = loadEnv(testEnv({ ...FAST_RECOVERY_ENV, EVALGATE_FAULT: 'chunk-delay-ms=40', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...extra }));
  const container = await createContainer(env, { log: pino({ level: env.LOG_LEVEL }) });
  const workers = await startWorkers(container);
  const app = await buildApp(container, { workers });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const tenant = await makeTenant(container);
  const { evalVersionId } = await makeEval(container, tenant.id);
  return {
    env,
    container,
    workers,
    app,
    baseUrl,
    tenant,
    evalVersionId,
    async readyz() {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
    },
    async close() {
      await app.close();
      await workers.close(5_000);
      await container.close();
      await dropDatabase(env.DATABASE_URL);
    },
  };
}

export interface Tally {
  runs: number;
  items: number;
  lost: number;
  duplicates: number;
}

/**
 * A run of `n` items (a third fail) is scheduled; at a quarter done, `fault` runs (kill a master, fail over…);
 * right after it a second run (100 items) is scheduled. Both must complete with one result per item and
 * counters equal to count(results).
 */
export async function runsThroughFault(s: TopologyStack, fault: () => Promise<void>, n = 800): Promise<Tally> {
  const ds1 = await makeDataset(s.container, s.tenant.id, items(n, (i) => i % 3 !== 0));
  const ds2 = await makeDataset(s.container, s.tenant.id, items(100));
  const run1 = await scheduleRun(s.baseUrl, s.tenant.keys.member, ds1.datasetId, s.evalVersionId);
  const at = await waitForProgress(s.baseUrl, s.tenant.keys.member, run1.id, 0.25, 60_000);
  expect(at.status).not.toBe('completed');
  await fault();
  // accepted while Redis is failing over (Postgres keeps it; the reconciler enqueues what the producer could not)
  const second = await api<{ id: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds2.datasetId}/runs`, s.tenant.keys.member, { eval_version_id: s.evalVersionId });
  expect(second.status, JSON.stringify(second.body)).toBe(202);
  const em = s.container.orm.em.fork();
  const tally: Tally = { runs: 0, items: 0, lost: 0, duplicates: 0 };
  for (const [runId, count] of [
    [run1.id, n],
    [second.body.id, 100],
  ] as const) {
    await waitFor(
      async () => {
        const r = await api<{ status: string }>(s.baseUrl, 'GET', `/v1/eval-runs/${runId}`, s.tenant.keys.viewer);
        return r.body.status === 'completed' || r.body.status === 'failed';
      },
      { timeoutMs: 120_000, intervalMs: 200, what: `run ${runId} to end` },
    );
    const t = await assertExactlyOnce(em, runId, count);
    tally.runs++;
    tally.items += count;
    tally.lost += t.lost;
    tally.duplicates += t.duplicates;
  }
  const r1 = await api<{ passed_count: number; failed_count: number }>(s.baseUrl, 'GET', `/v1/eval-runs/${run1.id}`, s.tenant.keys.viewer);
  expect(r1.body).toMatchObject({ passed_count: n - Math.ceil(n / 3), failed_count: Math.ceil(n / 3) });
  return tally;
}

/** One summary line per topology test, like the fault suite's `[fault]` lines. */
export function report(what: string, data: object): void {
  process.stdout.write(`[topology] ${what} ${JSON.stringify(data)}\n`);
}
