/**
 * Worker processes as they run in production (`server/main.ts worker`), with
 * the faults the issue names: three workers on one run, SIGKILL mid-run,
 * SIGTERM mid-run (graceful), and a Redis FLUSHALL mid-run on a disposable
 * redis-server. Each ends with every item scored exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../server/sql.ts';
import { assertCountersExact, items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { spawnEvalgate, startDisposableRedis, type DisposableRedis, type EvalgateProcess } from '../helpers/processes.ts';
import { getRun, scheduleRun, waitForProgress, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const WORKER_ENV = {
  LOG_LEVEL: 'warn',
  CHUNK_SIZE: '25',
  WORKER_CONCURRENCY: '2',
  LOCK_DURATION_MS: '2000',
  STALLED_INTERVAL_MS: '1000',
  RECONCILE_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '10000',
};

function workerEnv(s: Stack, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...WORKER_ENV,
    DATABASE_URL: s.env.DATABASE_URL,
    REDIS_URL: s.env.REDIS_URL,
    EVALGATE_QUEUE_PREFIX: s.env.EVALGATE_QUEUE_PREFIX,
    ...extra,
  };
}

async function exactlyOnce(s: Stack, runId: string, itemCount: number) {
  const em = s.container.orm.em.fork();
  await assertCountersExact(em, runId);
  const [row] = await sql<{ results: number; distinct_items: number }>(
    em,
    'select count(*)::int as results, count(distinct item_id)::int as distinct_items from eval_run_items where run_id = ?',
    [runId],
  );
  expect(row).toEqual({ results: itemCount, distinct_items: itemCount });
}

describe('worker processes', () => {
  let s: Stack;
  let t: TenantFixture;
  let evalVersionId: string;
  const procs: EvalgateProcess[] = [];
  beforeAll(async () => {
    // The API only: every item is scored by the spawned worker processes.
    s = await startStack({ workers: false });
    t = await makeTenant(s.container);
    evalVersionId = (await makeEval(s.container, t.id)).evalVersionId;
  });
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await s?.close();
  });

  it('three worker processes share one run', async () => {
    const n = 3_000;
    const ds = await makeDataset(s.container, t.id, items(n, (i) => i % 4 !== 0));
    const ws = [1, 2, 3].map(() => spawnEvalgate('worker', workerEnv(s, { EVALGATE_FAULT: 'chunk-delay-ms=20' })));
    procs.push(...ws);
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, evalVersionId);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 90_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: 2_250, failed_count: 750 });
    await exactlyOnce(s, run.id, n);
    for (const w of ws) w.kill('SIGTERM');
    for (const w of ws) expect((await w.exited).code).toBe(0);
  });

  for (const share of [0.1, 0.5, 0.9]) {
    it(`a worker killed with SIGKILL at ~${share * 100}% : the run completes, no item twice`, async () => {
      const n = 1_500;
      const ds = await makeDataset(s.container, t.id, items(n));
      const victim = spawnEvalgate('worker', workerEnv(s, { EVALGATE_FAULT: 'chunk-delay-ms=40' }));
      procs.push(victim);
      const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, evalVersionId);
      const at = await waitForProgress(s.baseUrl, t.keys.member, run.id, share, 90_000);
      victim.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      expect(at.status).toBe('running');
      const rescuer = spawnEvalgate('worker', workerEnv(s));
      procs.push(rescuer);
      const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 90_000);
      expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: n });
      await exactlyOnce(s, run.id, n);
      rescuer.kill('SIGTERM');
      expect((await rescuer.exited).code).toBe(0);
    });
  }

  it('SIGTERM mid-run: in-flight chunks finish, the process exits 0, no job is left active (stalled)', async () => {
    const n = 1_000;
    const ds = await makeDataset(s.container, t.id, items(n));
    const w = spawnEvalgate('worker', workerEnv(s, { EVALGATE_FAULT: 'chunk-delay-ms=400' }));
    procs.push(w);
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, evalVersionId);
    await waitForProgress(s.baseUrl, t.keys.member, run.id, 0.05, 60_000);
    await waitFor(async () => (await s.container.queues.runChunk.getActiveCount()) > 0, { what: 'a chunk in flight' });
    w.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    // The chunks it held were finished and released, not abandoned to the stall checker.
    expect(await s.container.queues.runChunk.getActiveCount()).toBe(0);
    const [undone] = await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from eval_run_chunks where run_id = ? and done_at is null', [run.id]);
    const mid = await getRun(s.baseUrl, t.keys.member, run.id);
    expect(mid.completed_count).toBe((40 - (undone?.n ?? 0)) * 25);
    const next = spawnEvalgate('worker', workerEnv(s));
    procs.push(next);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: n });
    await exactlyOnce(s, run.id, n);
    next.kill('SIGTERM');
    await next.exited;
  });
});

describe('Redis FLUSHALL mid-run (disposable redis-server)', () => {
  let redis: DisposableRedis;
  let s: Stack;
  let t: TenantFixture;
  const procs: EvalgateProcess[] = [];
  beforeAll(async () => {
    redis = await startDisposableRedis();
    s = await startStack({ workers: false, env: { REDIS_URL: redis.url } });
    t = await makeTenant(s.container);
  });
  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await s?.close();
    await redis?.stop();
  });

  it('the reconciler rebuilds every job from Postgres and the run completes exactly once', async () => {
    const n = 1_500;
    const ds = await makeDataset(s.container, t.id, items(n, (i) => i % 2 === 0));
    const ev = await makeEval(s.container, t.id);
    const w = spawnEvalgate('worker', workerEnv(s, { EVALGATE_FAULT: 'chunk-delay-ms=40' }));
    procs.push(w);
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await waitForProgress(s.baseUrl, t.keys.member, run.id, 0.3, 60_000);
    await redis.client().flushall();
    const flushedAt = await getRun(s.baseUrl, t.keys.member, run.id);
    expect(flushedAt.status).toBe('running');
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 90_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: n / 2, failed_count: n / 2 });
    await exactlyOnce(s, run.id, n);
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  });

  it('a run scheduled while nothing is queued (enqueue lost) is started by the reconciler', async () => {
    const ds = await makeDataset(s.container, t.id, items(50));
    const ev = await makeEval(s.container, t.id);
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await redis.client().flushall(); // the run-start job is gone; Postgres still says pending
    const w = spawnEvalgate('worker', workerEnv(s));
    procs.push(w);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 60_000);
    expect(done.status).toBe('completed');
    await exactlyOnce(s, run.id, 50);
    w.kill('SIGTERM');
    await w.exited;
  });
});
