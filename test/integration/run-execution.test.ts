/**
 * Run execution with in-process BullMQ workers on real Redis and Postgres:
 * exact counters, duplicate delivery, snapshot isolation, per-item errors,
 * retry, cancel, empty runs and run-level failures. Every test checks that
 * the counters equal count(results).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failRun, loadChunkWork, recordResults, startRun, type ItemResult } from '../../domain/eval-runs/run-lifecycle.ts';
import { startWorkers } from '../../server/workers.ts';
import { QUEUE_NAMES } from '../../jobs/queues.ts';
import { addDatasetItems } from '../../domain/datasets/dataset.service.ts';
import { purgeDeletions } from '../../domain/eval-runs/run-deletion.service.ts';
import { sql } from '../../domain/shared/sql.ts';
import { assertCountersExact, items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, getRun, scheduleRun, waitForProgress, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const FAST = { CHUNK_SIZE: '100', WORKER_CONCURRENCY: '4', RECONCILE_INTERVAL_MS: '1000', LOCK_DURATION_MS: '5000', STALLED_INTERVAL_MS: '2000' };

describe('with running workers', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: FAST });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  it('scores thousands of items with exact counts for a known pass/fail split', async () => {
    const n = 3_000;
    const ds = await makeDataset(s.container, t.id, items(n, (i) => i % 3 !== 0));
    const ev = await makeEval(s.container, t.id);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id);
    expect(run).toMatchObject({ status: 'completed', item_count: n, completed_count: n, passed_count: 2_000, failed_count: 1_000, error_count: 0 });
    expect(run.mean_score).toBeCloseTo(2 / 3, 10);
    expect(run.started_at).not.toBeNull();
    expect(run.completed_at).not.toBeNull();
    expect(Date.parse(run.completed_at as string)).toBeGreaterThanOrEqual(Date.parse(run.started_at as string));
    await assertCountersExact(s.container.orm.em.fork(), run.id);
    const [chunks] = await sql<{ n: number; items: number; undone: number }>(
      s.container.orm.em.fork(),
      'select count(*)::int as n, sum(item_count)::int as items, count(*) filter (where done_at is null)::int as undone from eval_run_chunks where run_id = ?',
      [run.id],
    );
    expect(chunks).toEqual({ n: 30, items: n, undone: 0 });
  });

  it('completes a run over zero items at once', async () => {
    const ds = await makeDataset(s.container, t.id, []);
    const ev = await makeEval(s.container, t.id);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id);
    expect(run).toMatchObject({ status: 'completed', item_count: 0, completed_count: 0, mean_score: null });
  });

  it('gives a throwing item an error result, never a pass or a failed run; retry re-scores only error items', async () => {
    // numeric_diff throws on a non-numeric output: items 0, 5, 10, … are poison.
    const data = Array.from({ length: 250 }, (_, i) => ({ input: i, expected_output: 10, output: i % 5 === 0 ? 'not a number' : i % 2 ? 10 : 99 }));
    const ds = await makeDataset(s.container, t.id, data);
    const ev = await makeEval(s.container, t.id, { type: 'numeric_diff', tolerance: 0 });
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id);
    expect(run).toMatchObject({ status: 'completed', completed_count: 250, error_count: 50 });
    expect(run.passed_count + run.failed_count).toBe(200);
    const em = s.container.orm.em.fork();
    await assertCountersExact(em, run.id);
    const [errorRow] = await sql<{ error: string; score: number | null; passed: boolean | null }>(
      em,
      `select error, score, passed from eval_run_items where run_id = ? and status = 'error' limit 1`,
      [run.id],
    );
    expect(errorRow?.error).toMatch(/.+/);
    expect(errorRow?.score).toBeNull();
    expect(errorRow?.passed).toBeNull();

    const before = await sql<{ item_id: string; created_at: string }>(em, `select item_id, created_at from eval_run_items where run_id = ? and status <> 'error'`, [run.id]);
    const retried = await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/retry`, t.keys.member);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: 'running', completed_count: 200, error_count: 0 });
    const after = await waitForRunEnd(s.baseUrl, t.keys.member, run.id);
    expect(after).toMatchObject({ status: 'completed', completed_count: 250, error_count: 50, passed_count: run.passed_count, failed_count: run.failed_count });
    await assertCountersExact(em, run.id);
    const kept = await sql<{ item_id: string; created_at: string }>(em, `select item_id, created_at from eval_run_items where run_id = ? and status <> 'error'`, [run.id]);
    expect(kept.map((r) => [r.item_id, new Date(r.created_at).toISOString()]).sort()).toEqual(before.map((r) => [r.item_id, new Date(r.created_at).toISOString()]).sort());

    // Nothing left to retry on a clean run: 409.
    const clean = await makeDataset(s.container, t.id, items(5));
    const exact = await makeEval(s.container, t.id);
    const cleanRun = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, clean.datasetId, exact.evalVersionId)).id);
    expect(cleanRun).toMatchObject({ status: 'completed', error_count: 0 });
    const noop = await api(s.baseUrl, 'POST', `/v1/eval-runs/${cleanRun.id}/retry`, t.keys.member);
    expect(noop.status).toBe(409);
    expect(noop.body).toEqual({ error: expect.stringMatching(/no error items/) });
    // viewers may not retry
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/retry`, t.keys.viewer)).status).toBe(403);
  });

  it('ends the run failed with an actionable message when the stored evaluator config is invalid', async () => {
    const ds = await makeDataset(s.container, t.id, items(20));
    const ev = await makeEval(s.container, t.id);
    await sql(s.container.orm.em.fork(), `update eval_versions set evaluator = '{"type":"no_such_evaluator"}'::jsonb where id = ?`, [ev.evalVersionId]);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id);
    expect(run.status).toBe('failed');
    expect(run.error_message).toMatch(/invalid evaluator config/);
    expect(run.completed_at).not.toBeNull();
    await assertCountersExact(s.container.orm.em.fork(), run.id);
  });

  it('cancel answers 409 for a run that already ended, 404 for another tenant', async () => {
    const ds = await makeDataset(s.container, t.id, items(3));
    const ev = await makeEval(s.container, t.id);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId)).id);
    const r = await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/cancel`, t.keys.member);
    expect(r.status).toBe(409);
    expect(r.body).toEqual({ error: expect.stringMatching(/already ended/) });
    const other = await makeTenant(s.container, 'other');
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/cancel`, other.keys.owner)).status).toBe(404);
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/retry`, other.keys.owner)).status).toBe(404);
  });
});

describe('controlled delivery (workers started by the test)', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: false, env: { ...FAST, CHUNK_SIZE: '50' } });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  it('counts a chunk delivered twice once', async () => {
    const ds = await makeDataset(s.container, t.id, items(500, (i) => i % 2 === 0));
    const ev = await makeEval(s.container, t.id);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    const em = s.container.orm.em.fork();
    const started = await startRun(em, scheduled.id, 50);
    expect(started.chunks).toBe(10);
    // Every chunk twice, under two job ids, as a redelivery after a lost lock would do.
    for (const copy of ['a', 'b']) {
      await s.container.queues.runChunk.addBulk(
        Array.from({ length: 10 }, (_, i) => ({ name: QUEUE_NAMES.runChunk, data: { run_id: scheduled.id, chunk_index: i }, opts: { jobId: `${copy}-${scheduled.id}-${i}` } })),
      );
    }
    await s.container.queues.runStart.remove(scheduled.id);
    const workers = await startWorkers(s.container);
    try {
      const run = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id);
      expect(run).toMatchObject({ status: 'completed', completed_count: 500, passed_count: 250, failed_count: 250 });
      await waitFor(async () => (await s.container.queues.runChunk.getJobCounts('wait', 'active')).wait === 0, { what: 'queue drained' });
      await waitFor(async () => (await s.container.queues.runChunk.getActiveCount()) === 0, { what: 'no active job' });
      await assertCountersExact(em, run.id);
      expect((await getRun(s.baseUrl, t.keys.member, run.id)).completed_count).toBe(500);
    } finally {
      await workers.close();
    }
  });

  it('a chunk redelivered after part of it was recorded loads only the rest; a done chunk or an ended run loads nothing', async () => {
    const ds = await makeDataset(s.container, t.id, items(100));
    const ev = await makeEval(s.container, t.id);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await s.container.queues.runStart.remove(scheduled.id); // this test delivers by hand
    const em = s.container.orm.em.fork();
    expect((await startRun(em, scheduled.id, 50)).chunks).toBe(2);
    const first = await loadChunkWork(em, scheduled.id, 0);
    expect(first?.chunk).toMatchObject({ run_id: scheduled.id, tenant_id: t.id, status: 'running', done: false });
    expect(first?.items).toHaveLength(50);
    const ids = (first?.items ?? []).map((i) => i.id);
    expect(ids).toEqual([...ids].sort());
    const result = (id: string): ItemResult => ({ item_id: id, status: 'passed', score: 1, passed: true, reason: null, error: null, latency_ms: 1 });
    // 20 of them recorded, the chunk not marked done (as a judged chunk's intermediate flush or a crash would leave it)
    const recorded = ids.filter((_, k) => k % 5 < 2);
    await recordResults(em, first!.chunk, 0, 1, recorded.map(result), false);
    const again = await loadChunkWork(em, scheduled.id, 0);
    expect(again?.chunk.done).toBe(false);
    expect(again?.items.map((i) => i.id)).toEqual(ids.filter((id) => !recorded.includes(id)));
    expect((await loadChunkWork(em, scheduled.id, 1))?.items).toHaveLength(50); // the other chunk is untouched
    const out = await recordResults(em, again!.chunk, 0, 2, ids.map(result), true); // a full re-score: only the 30 missing land
    expect(out).toMatchObject({ inserted: 30, completed_count: 50, status: 'running', just_completed: false });
    expect(await loadChunkWork(em, scheduled.id, 0)).toMatchObject({ chunk: { done: true }, items: [] });
    expect(await loadChunkWork(em, scheduled.id, 2)).toBeNull();
    await failRun(em, scheduled.id, 'canceled');
    expect(await loadChunkWork(em, scheduled.id, 1)).toMatchObject({ chunk: { status: 'failed', done: false }, items: [] });
    await assertCountersExact(em, scheduled.id);
  });

  it('stores a reason or error holding half an emoji or a NUL (as U+FFFD) instead of failing the chunk on every retry', async () => {
    const ds = await makeDataset(s.container, t.id, items(3));
    const ev = await makeEval(s.container, t.id);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await s.container.queues.runStart.remove(scheduled.id);
    const em = s.container.orm.em.fork();
    await startRun(em, scheduled.id, 50);
    const w = await loadChunkWork(em, scheduled.id, 0);
    const [a, b, c] = w!.items.map((i) => i.id);
    const emoji = '\u{1F600}';
    const results: ItemResult[] = [
      { item_id: a!, status: 'failed', score: 0, passed: false, reason: `cut here ${emoji.slice(0, 1)}`, error: null, latency_ms: 1 },
      { item_id: b!, status: 'error', score: null, passed: null, reason: null, error: `${emoji.slice(1)} nul\u0000here`, latency_ms: 1 },
      { item_id: c!, status: 'passed', score: 1, passed: true, reason: `whole ${emoji}`, error: null, latency_ms: 1 },
    ];
    const out = await recordResults(em, w!.chunk, 0, 1, results, true);
    expect(out).toMatchObject({ inserted: 3, completed_count: 3, status: 'completed' });
    const rows = await sql<{ item_id: string; reason: string | null; error: string | null }>(em, 'select item_id, reason, error from eval_run_items where run_id = ? order by item_id', [scheduled.id]);
    expect(Object.fromEntries(rows.map((r) => [r.item_id, r.reason ?? r.error]))).toEqual({
      [a!]: 'cut here \uFFFD',
      [b!]: '\uFFFD nul\uFFFDhere',
      [c!]: `whole ${emoji}`,
    });
  });

  it('results never outlive their run, however the run is deleted', async () => {
    const other = await makeTenant(s.container, 'leaving');
    const ev = await makeEval(s.container, other.id);
    const em = s.container.orm.em.fork();
    const recordedRun = async () => {
      const ds = await makeDataset(s.container, other.id, items(60));
      const run = await scheduleRun(s.baseUrl, other.keys.member, ds.datasetId, ev.evalVersionId);
      await s.container.queues.runStart.remove(run.id);
      await startRun(em, run.id, 50);
      for (const idx of [0, 1]) {
        const w = await loadChunkWork(em, run.id, idx);
        await recordResults(em, w!.chunk, idx, 1, w!.items.map((i): ItemResult => ({ item_id: i.id, status: 'failed', score: 0, passed: false, reason: null, error: null, latency_ms: 1 })), true);
      }
      expect(await getRun(s.baseUrl, other.keys.member, run.id)).toMatchObject({ status: 'completed', completed_count: 60 });
      return run.id;
    };
    const count = async (runId: string) =>
      (await sql<{ n: number }>(em, 'select count(*)::int as n from eval_run_items where run_id = ?', [runId]))[0]?.n;
    const byHand = await recordedRun();
    const withTenant = await recordedRun();
    expect(await count(byHand)).toBe(60);
    // every delete of runs marks them (trigger on eval_runs); the purge deletes their results in batches
    await sql(em, 'delete from eval_runs where id = ?', [byHand]);
    expect(await purgeDeletions(s.container, s.container.log)).toMatchObject({ more: false });
    expect(await count(byHand)).toBe(0);
    expect(await count(withTenant)).toBe(60);
    // the cascade tenants → eval_runs marks them too (no foreign key from results to runs)
    await sql(em, 'delete from tenants where id = ?', [other.id]);
    expect(await purgeDeletions(s.container, s.container.log)).toMatchObject({ more: false });
    expect(await count(withTenant)).toBe(0);
  });

  it('keeps the pinned snapshot: items added after scheduling are not in the run', async () => {
    const ds = await makeDataset(s.container, t.id, items(120));
    const ev = await makeEval(s.container, t.id);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    const v2 = await addDatasetItems(s.container.orm.em.fork(), t.id, ds.datasetId, items(30));
    expect(v2.item_count).toBe(150);
    const workers = await startWorkers(s.container);
    try {
      const run = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id);
      expect(run).toMatchObject({ status: 'completed', item_count: 120, completed_count: 120, dataset_version_id: ds.versionId });
      const [outside] = await sql<{ n: number }>(
        s.container.orm.em.fork(),
        `select count(*)::int as n from eval_run_items r join dataset_items i on i.id = r.item_id where r.run_id = ? and i.valid_from > 2`,
        [run.id],
      );
      expect(outside?.n).toBe(0);
      await assertCountersExact(s.container.orm.em.fork(), run.id);
      // The next run pins version 3 and sees all 150.
      const next = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId)).id);
      expect(next).toMatchObject({ item_count: 150, completed_count: 150, dataset_version_id: v2.id });
    } finally {
      await workers.close();
    }
  });
});

describe('cancel mid-run', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: { ...FAST, CHUNK_SIZE: '20', WORKER_CONCURRENCY: '2', EVALGATE_FAULT: 'chunk-delay-ms=100' } });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  it('ends the run failed/"canceled" and records nothing after the in-flight chunks', async () => {
    const ds = await makeDataset(s.container, t.id, items(2_000));
    const ev = await makeEval(s.container, t.id);
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    await waitForProgress(s.baseUrl, t.keys.member, scheduled.id, 0.05);
    const canceled = await api<{ status: string; error_message: string }>(s.baseUrl, 'POST', `/v1/eval-runs/${scheduled.id}/cancel`, t.keys.member);
    expect(canceled.status).toBe(202);
    expect(canceled.body).toMatchObject({ status: 'failed', error_message: 'canceled' });
    // Give queued chunks time to be picked up (and do nothing).
    await new Promise((r) => setTimeout(r, 1_500));
    const a = await getRun(s.baseUrl, t.keys.member, scheduled.id);
    await new Promise((r) => setTimeout(r, 1_000));
    const b = await getRun(s.baseUrl, t.keys.member, scheduled.id);
    expect(b).toEqual(a);
    expect(b).toMatchObject({ status: 'failed', error_message: 'canceled' });
    expect(b.completed_count).toBeGreaterThan(0);
    expect(b.completed_count).toBeLessThan(2_000);
    await assertCountersExact(s.container.orm.em.fork(), scheduled.id);
  });
});
