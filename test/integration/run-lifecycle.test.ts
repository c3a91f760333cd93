/**
 * The run lifecycle past the happy path, on real Postgres and Redis: a run
 * canceled mid-run and then retried ends with every item scored exactly once;
 * a chunk that crashed its worker CHUNK_MAX_CRASHES times ends as `error`
 * items; the reconciler reaches every active run however many are stuck.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueUndoneChunks } from '../../jobs/eval-runs/enqueue.ts';
import { EvaluatorCache } from '../../domain/evaluators/evaluator-cache.ts';
import { reconcile } from '../../jobs/eval-runs/reconcile.job.ts';
import { beginChunk, startRun } from '../../domain/eval-runs/run-lifecycle.ts';
import { jobIds } from '../../jobs/queues.ts';
import type { NewItem } from '../../domain/datasets/dataset.service.ts';
import { insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import { sql } from '../../domain/shared/sql.ts';
import { assertExactlyOnce } from '../helpers/exactly-once.ts';
import { assertCountersExact, items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, getRun, scheduleRun, waitForProgress, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

/** Done chunks of the run that lack a result for some of their items (a chunk "done" without its results). */
async function doneChunksWithoutResults(em: EntityManager, runId: string): Promise<number> {
  const [row] = await sql<{ n: number }>(
    em,
    `select count(*)::int as n from eval_run_chunks c
      where c.run_id = ? and c.done_at is not null
        and c.item_count > (select count(*) from eval_run_items x where x.run_id = c.run_id and x.item_id between c.first_item_id and c.last_item_id)`,
    [runId],
  );
  return row?.n ?? -1;
}

/** numeric_diff against 10 with tolerance 0: i % 50 == 0 throws (error), i % 3 == 0 fails, the rest pass. */
function mixed(n: number): { data: NewItem[]; passed: number; failed: number; errors: number } {
  const data = Array.from({ length: n }, (_, i) => ({ input: i, expected_output: 10, output: i % 50 === 0 ? 'not a number' : i % 3 === 0 ? 99 : 10 }));
  const errors = data.filter((_, i) => i % 50 === 0).length;
  const failed = data.filter((_, i) => i % 50 !== 0 && i % 3 === 0).length;
  return { data, passed: n - errors - failed, failed, errors };
}

describe('cancel, then retry', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: { CHUNK_SIZE: '20', WORKER_CONCURRENCY: '2', RECONCILE_INTERVAL_MS: '60000', EVALGATE_FAULT: 'chunk-delay-ms=100' } });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  it('scores exactly the items the canceled run had not scored plus its error items, and ends', async () => {
    const n = 1_000;
    const { data, passed, failed, errors } = mixed(n);
    const ds = await makeDataset(s.container, t.id, data);
    const ev = await makeEval(s.container, t.id, { type: 'numeric_diff', tolerance: 0 });
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await waitForProgress(s.baseUrl, t.keys.member, scheduled.id, 0.1);
    const canceled = await api<{ status: string }>(s.baseUrl, 'POST', `/v1/eval-runs/${scheduled.id}/cancel`, t.keys.member);
    expect(canceled.status).toBe(202);

    // Every queued chunk taken (a no-op) and every chunk in flight at the cancel landed.
    const q = s.container.queues.runChunk;
    await waitFor(async () => {
      const c = await q.getJobCounts('active', 'wait', 'prioritized', 'delayed');
      return Object.values(c).every((v) => v === 0);
    }, { timeoutMs: 30_000, what: 'chunk queue to drain' });
    const em = s.container.orm.em.fork();
    const atCancel = await getRun(s.baseUrl, t.keys.member, scheduled.id);
    expect(atCancel).toMatchObject({ status: 'failed', error_message: 'canceled' });
    expect(atCancel.completed_count).toBeGreaterThan(0);
    expect(atCancel.completed_count).toBeLessThan(n);
    await assertCountersExact(em, scheduled.id);
    // What this guards against: a chunk landing after the cancel marked done without its results, which retry never reopens.
    expect(await doneChunksWithoutResults(em, scheduled.id)).toBe(0);
    const kept = `select item_id, created_at::text as at from eval_run_items where run_id = ? and status <> 'error' order by item_id`;
    const keptBefore = await sql<{ item_id: string; at: string }>(em, kept, [scheduled.id]);
    expect(keptBefore.length).toBeGreaterThan(0);

    const retried = await api<{ status: string }>(s.baseUrl, 'POST', `/v1/eval-runs/${scheduled.id}/retry`, t.keys.member);
    expect(retried.status, JSON.stringify(retried.body)).toBe(202);
    expect(retried.body.status).toBe('running');
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', item_count: n, completed_count: n, passed_count: passed, failed_count: failed, error_count: errors });
    await assertExactlyOnce(em, scheduled.id, n);
    // Passed and failed results from before the cancel were kept, not scored again.
    const keptAfter = await sql<{ item_id: string; at: string }>(
      em,
      `select item_id, created_at::text as at from eval_run_items
        where run_id = ? and item_id in (select value::uuid from jsonb_array_elements_text(?::jsonb)) order by item_id`,
      [scheduled.id, JSON.stringify(keptBefore.map((r) => r.item_id))],
    );
    expect(keptAfter).toEqual(keptBefore);
  });
});

describe('a chunk that keeps crashing its worker', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: { CHUNK_SIZE: '25', WORKER_CONCURRENCY: '2', RECONCILE_INTERVAL_MS: '60000', CHUNK_MAX_CRASHES: '3' } });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  it('becomes `error` items with the reason once taken CHUNK_MAX_CRASHES times unfinished; the run ends; retry scores them', async () => {
    const n = 200;
    const ds = await makeDataset(s.container, t.id, items(n));
    const ev = await makeEval(s.container, t.id);
    const em = s.container.orm.em.fork();
    const run = await insertPendingRun(em, t.id, ds.datasetId, ev.evalVersionId);
    await startRun(em, run.id, 25);
    // Three starts of chunk 2 and two of chunk 5 that never ended: their workers died holding them.
    for (let i = 0; i < 3; i++) expect(await beginChunk(em, run.id, 2)).toEqual({ crashes: i });
    for (let i = 0; i < 2; i++) await beginChunk(em, run.id, 5);
    await enqueueUndoneChunks(s.container, em, run.id, { repair: false });

    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id);
    expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: n - 25, error_count: 25 });
    await assertExactlyOnce(em, run.id, n);
    const errs = await sql<{ error: string; item_id: string }>(em, `select error, item_id from eval_run_items where run_id = ? and status = 'error' order by item_id`, [run.id]);
    expect(new Set(errs.map((e) => e.error))).toEqual(new Set(['chunk crashed its worker 3 times']));
    const [chunk2] = await sql<{ first_item_id: string; last_item_id: string }>(em, 'select first_item_id, last_item_id from eval_run_chunks where run_id = ? and chunk_index = 2', [run.id]);
    expect(errs[0]?.item_id).toBe(chunk2?.first_item_id);
    expect(errs.at(-1)?.item_id).toBe(chunk2?.last_item_id);
    // Chunk 5 was under the limit: scored normally, and its finished start was not counted as a crash.
    const counts = await sql<{ chunk_index: number; crash_count: number }>(em, 'select chunk_index, crash_count from eval_run_chunks where run_id = ? and chunk_index in (1, 5) order by chunk_index', [run.id]);
    expect(counts).toEqual([{ chunk_index: 1, crash_count: 0 }, { chunk_index: 5, crash_count: 2 }]);

    // A retry is the tenant's explicit second chance: crash counts reset, the chunk is scored.
    const retried = await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/retry`, t.keys.member);
    expect(retried.status).toBe(202);
    const again = await waitForRunEnd(s.baseUrl, t.keys.member, run.id);
    expect(again).toMatchObject({ status: 'completed', completed_count: n, passed_count: n, error_count: 0 });
    await assertExactlyOnce(em, run.id, n);
  });
});

describe('reconcile', () => {
  let s: Stack;
  let t: TenantFixture;
  let ev: { evalVersionId: string };
  let ds: { datasetId: string };
  const deps = () => ({ container: s.container, log: s.container.log, evaluators: new EvaluatorCache(s.container) });
  beforeAll(async () => {
    // No workers: chunk jobs stay queued, so a run with jobs is "stuck" and one without is repairable.
    s = await startStack({ workers: false, http: false, env: { CHUNK_SIZE: '10' } });
    t = await makeTenant(s.container);
    ev = await makeEval(s.container, t.id);
    ds = await makeDataset(s.container, t.id, items(20));
  });
  afterAll(async () => s?.close());

  async function runningRun(opts: { enqueue: boolean }): Promise<string> {
    const em = s.container.orm.em.fork();
    const run = await insertPendingRun(em, t.id, ds.datasetId, ev.evalVersionId);
    await startRun(em, run.id, 10);
    if (opts.enqueue) await enqueueUndoneChunks(s.container, em, run.id, { repair: false });
    return run.id;
  }
  const jobState = (runId: string) => s.container.queues.runChunk.getJobState(jobIds.runChunk(runId, 0));

  it('reaches a repairable run behind more than a page of stuck runs, and behind more than a sweep\'s budget on a later sweep', async () => {
    const em = s.container.orm.em.fork();
    const batch = 3;
    const stuck: string[] = [];
    for (let i = 0; i < 3 * batch + 1; i++) stuck.push(await runningRun({ enqueue: true }));
    const repairable = await runningRun({ enqueue: false });
    // Stuck runs never move: the oldest updated_at, which a `limit batch order by updated_at` sweep took every time.
    await sql(em, `update eval_runs set updated_at = now() - interval '1 day' where id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`, [JSON.stringify(stuck)]);
    expect(await jobState(repairable)).toBe('unknown');

    const swept = await reconcile(deps(), { batch });
    expect(swept).toMatchObject({ running: stuck.length + 1, requeued: 2, wrapped: true });
    expect(await jobState(repairable)).not.toBe('unknown');

    // A budget smaller than the active runs: each sweep goes on where the last stopped (cursor in Postgres).
    const later = await runningRun({ enqueue: false });
    const active = stuck.length + 2;
    const budget = 4;
    let sweeps = 0;
    while ((await jobState(later)) === 'unknown') {
      expect(sweeps, 'sweeps before the last run was reached').toBeLessThan(Math.ceil(active / budget));
      const r = await reconcile(deps(), { batch: 2, budget });
      expect(r.running).toBeLessThanOrEqual(budget);
      sweeps++;
    }
    expect(sweeps).toBe(Math.ceil(active / budget));
  });

  it('re-opens the done chunks of a running run that lack their results (left so by a cancel before this fix), so it can end', async () => {
    const em = s.container.orm.em.fork();
    const runId = await runningRun({ enqueue: false });
    await sql(em, 'update eval_run_chunks set done_at = now() where run_id = ?', [runId]);
    const r = await reconcile(deps());
    expect(r.reopened).toBe(2);
    expect(await jobState(runId)).not.toBe('unknown');
    const [undone] = await sql<{ n: number }>(em, 'select count(*)::int as n from eval_run_chunks where run_id = ? and done_at is null', [runId]);
    expect(undone?.n).toBe(2);
    // Healthy running runs (chunks undone, jobs queued) are left alone: a second sweep reopens nothing.
    expect((await reconcile(deps())).reopened).toBe(0);
  });
});
