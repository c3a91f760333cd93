/**
 * Worker processes as they run in production (`server/main.ts worker`), with
 * the faults a run must survive: three workers on one run, SIGKILL mid-run,
 * SIGTERM mid-run (graceful), and a Redis FLUSHALL mid-run on a disposable
 * redis-server. Each ends with every item scored exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { assertExactlyOnce } from '../helpers/exactly-once.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { FAST_RECOVERY_ENV, killAll, spawnEvalgate, startDisposableRedis, type DisposableRedis, type EvalgateProcess } from '../helpers/processes.ts';
import { getRun, scheduleRun, waitForProgress, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

/**
 * For one describe: a stack whose API runs in the test and has no workers of
 * its own (every item is scored by the worker processes that `worker()`
 * spawns, with the fault suite's timings), a tenant with an eval, optionally a
 * disposable redis-server instead of the shared one, and their teardown.
 */
function workerStack(opts: { disposableRedis?: boolean } = {}) {
  const procs: EvalgateProcess[] = [];
  const ctx = {
    s: undefined as unknown as Stack,
    t: undefined as unknown as TenantFixture,
    evalVersionId: '',
    redis: undefined as DisposableRedis | undefined,
    /** A worker process on the stack's database, Redis and queue prefix; SIGKILLed at teardown if still running. */
    worker(extra: Record<string, string> = {}): EvalgateProcess {
      const { DATABASE_URL, REDIS_URL, EVALGATE_QUEUE_PREFIX } = ctx.s.env;
      const p = spawnEvalgate('worker', { LOG_LEVEL: 'warn', ...FAST_RECOVERY_ENV, DATABASE_URL, REDIS_URL, EVALGATE_QUEUE_PREFIX, ...extra });
      procs.push(p);
      return p;
    },
    /** Every item scored exactly once, counters exact, no chunk left undone (test/helpers/exactly-once.ts). */
    async exactlyOnce(runId: string, itemCount: number): Promise<void> {
      await assertExactlyOnce(ctx.s.container.orm.em.fork(), runId, itemCount);
    },
  };
  beforeAll(async () => {
    if (opts.disposableRedis) ctx.redis = await startDisposableRedis();
    ctx.s = await startStack({ workers: false, env: ctx.redis ? { REDIS_URL: ctx.redis.url } : {} });
    ctx.t = await makeTenant(ctx.s.container);
    ctx.evalVersionId = (await makeEval(ctx.s.container, ctx.t.id)).evalVersionId;
  });
  afterAll(async () => {
    await killAll(procs);
    await ctx.s?.close();
    await ctx.redis?.stop();
  });
  return ctx;
}

describe('worker processes', () => {
  const stack = workerStack();

  it('three worker processes share one run', async () => {
    const { s, t, evalVersionId } = stack;
    const n = 3_000;
    const ds = await makeDataset(s.container, t.id, items(n, (i) => i % 4 !== 0));
    const ws = [1, 2, 3].map(() => stack.worker({ EVALGATE_FAULT: 'chunk-delay-ms=20' }));
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, evalVersionId);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 90_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: 2_250, failed_count: 750 });
    await stack.exactlyOnce(run.id, n);
    for (const w of ws) w.kill('SIGTERM');
    for (const w of ws) expect((await w.exited).code).toBe(0);
  });

  for (const share of [0.1, 0.5, 0.9]) {
    it(`a worker killed with SIGKILL at ~${share * 100}% : the run completes, no item twice`, async () => {
      const { s, t, evalVersionId } = stack;
      const n = 1_500;
      const ds = await makeDataset(s.container, t.id, items(n));
      const victim = stack.worker({ EVALGATE_FAULT: 'chunk-delay-ms=40' });
      const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, evalVersionId);
      const at = await waitForProgress(s.baseUrl, t.keys.member, run.id, share, 90_000);
      victim.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      expect(at.status).toBe('running');
      const rescuer = stack.worker();
      const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 90_000);
      expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: n });
      await stack.exactlyOnce(run.id, n);
      rescuer.kill('SIGTERM');
      expect((await rescuer.exited).code).toBe(0);
    });
  }

  it('SIGTERM mid-run: in-flight chunks finish, the process exits 0, no job is left active (stalled)', async () => {
    const { s, t, evalVersionId } = stack;
    const n = 1_000;
    const ds = await makeDataset(s.container, t.id, items(n));
    const w = stack.worker({ EVALGATE_FAULT: 'chunk-delay-ms=400' });
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
    const next = stack.worker();
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: n });
    await stack.exactlyOnce(run.id, n);
    next.kill('SIGTERM');
    await next.exited;
  });
});

describe('Redis FLUSHALL mid-run (disposable redis-server)', () => {
  const stack = workerStack({ disposableRedis: true });

  it('the reconciler rebuilds every job from Postgres and the run completes exactly once', async () => {
    const { s, t, redis } = stack;
    const n = 1_500;
    const ds = await makeDataset(s.container, t.id, items(n, (i) => i % 2 === 0));
    const ev = await makeEval(s.container, t.id);
    const w = stack.worker({ EVALGATE_FAULT: 'chunk-delay-ms=40' });
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await waitForProgress(s.baseUrl, t.keys.member, run.id, 0.3, 60_000);
    await redis!.client().flushall();
    const flushedAt = await getRun(s.baseUrl, t.keys.member, run.id);
    expect(flushedAt.status).toBe('running');
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 90_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: n / 2, failed_count: n / 2 });
    await stack.exactlyOnce(run.id, n);
    w.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  });

  it('a run scheduled while nothing is queued (enqueue lost) is started by the reconciler', async () => {
    const { s, t, redis } = stack;
    const ds = await makeDataset(s.container, t.id, items(50));
    const ev = await makeEval(s.container, t.id);
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await redis!.client().flushall(); // the run-start job is gone; Postgres still says pending
    const w = stack.worker();
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 60_000);
    expect(done.status).toBe('completed');
    await stack.exactlyOnce(run.id, 50);
    w.kill('SIGTERM');
    await w.exited;
  });
});
