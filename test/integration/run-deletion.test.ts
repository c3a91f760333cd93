/**
 * Deleting runs and datasets (issue #16): DELETE /v1/eval-runs/{id} answers
 * 202 at once and the run is 404 everywhere from then on; its results,
 * samples and chunks go in the background, a bounded batch per statement
 * (counted through purgeDeletions' onBatch, never timed); a purge stopped
 * half-way is finished by another process's reconciler; roles, tenants, an
 * active run, 50 concurrent deletes; retention; a dataset delete.
 *
 * The main stack runs no workers, so the background work happens only when a
 * test calls it, and what is left in between can be looked at.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordResults } from '../../domain/eval-runs/run-lifecycle.ts';
import { claimAttempts } from '../../domain/eval-runs/eval-run.repository.ts';
import { purgeDeletions, sweepDeletions, type PurgeOptions } from '../../domain/eval-runs/run-deletion.service.ts';
import { sql } from '../../domain/shared/sql.ts';
import { deletionsLeft, runRows } from '../helpers/deletions.ts';
import { assertCountersExact, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api } from '../helpers/runs.ts';
import { seedCompletedRun, seedDataset } from '../helpers/seed-run.ts';
import { deleteKeys, startStack, waitFor, type Stack } from '../helpers/stack.ts';

const log = pino({ level: 'silent' });
let s: Stack;
let a: TenantFixture;
let b: TenantFixture;
let evalVersionId: string;

beforeAll(async () => {
  s = await startStack({ workers: false, env: { RESULT_RETENTION_DAYS: '30' } });
  a = await makeTenant(s.container, 'a');
  b = await makeTenant(s.container, 'b');
  evalVersionId = (await makeEval(s.container, a.id)).evalVersionId;
});
afterAll(async () => s?.close());

const em = () => s.container.orm.em.fork();

/** A completed run over a fresh dataset of `items` items, with one sample per result (two for every 7th item) and `chunks` chunks. */
async function seededRun(items: number, chunks = 12): Promise<{ datasetId: string; runId: string }> {
  const datasetId = await seedDataset(s.container, a.id, items);
  const runId = await seedCompletedRun(s.container, a.id, datasetId, evalVersionId);
  await sql(
    em(),
    `insert into eval_run_samples (run_id, item_id, repetition, tenant_id, status, attempts, output_text, created_at, updated_at)
     select i.run_id, i.item_id, r.rep, i.tenant_id, 'done', 1, 'out', now(), now()
       from eval_run_items i cross join lateral (select 0 as rep union all select 1 where (get_byte(uuid_send(i.item_id), 15) % 7) = 0) r
      where i.run_id = ?`,
    [runId],
  );
  await sql(
    em(),
    `insert into eval_run_chunks (run_id, chunk_index, first_item_id, last_item_id, item_count, done_at)
     select ?, g, ?::uuid, ?::uuid, 1, now() from generate_series(0, ?::int - 1) g`,
    [runId, '00000000-0000-7000-8000-000000000000', 'ffffffff-ffff-7fff-bfff-ffffffffffff', chunks],
  );
  return { datasetId, runId };
}

/** Runs the purge, counting every batch statement and the most rows one deleted. */
async function purge(opts: PurgeOptions = {}) {
  const batches: { table: string; rows: number }[] = [];
  const result = await purgeDeletions(s.container, log, { ...opts, onBatch: (x) => batches.push({ table: x.table, rows: x.rows }) });
  return { result, batches, maxRows: Math.max(0, ...batches.map((x) => x.rows)) };
}

/** A sample's value on GET /metrics. */
async function metric(series: string): Promise<number | undefined> {
  const text = await (await fetch(`${s.baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const del = (runId: string, key = a.keys.owner) => api<{ id?: string; status?: string; error?: string }>(s.baseUrl, 'DELETE', `/v1/eval-runs/${runId}`, key);

describe('DELETE /v1/eval-runs/{id}', () => {
  it('answers 202 at once; the run is 404 for every read right away; its rows go in the background, in bounded batches', async () => {
    const { datasetId, runId } = await seededRun(1_200);
    const kept = await seededRun(300);
    const before = await runRows(s, [runId]);
    expect(before).toMatchObject({ runs: 1, results: 1_200, chunks: 12 });
    expect(before.samples).toBeGreaterThan(1_200);

    const res = await del(runId);
    expect(res).toEqual({ status: 202, body: { id: runId, status: 'deleting' } });

    // gone for every read, at once
    const key = a.keys.owner;
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${runId}`, key)).status).toBe(404);
    expect(await api(s.baseUrl, 'GET', `/v1/eval-runs/${runId}/items`, key)).toEqual({ status: 404, body: { error: `eval run ${runId} not found` } });
    expect((await fetch(`${s.baseUrl}/v1/eval-runs/${runId}/items/export`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${runId}&head=${kept.runId}`, key)).status).toBe(404);
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/compare/export?base=${kept.runId}&head=${runId}`, key)).status).toBe(404);
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${runId}/gate`, key, { policy: {} })).status).toBe(404);
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${runId}/retry`, key)).status).toBe(404);
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${runId}/cancel`, key)).status).toBe(404);
    expect((await fetch(`${s.baseUrl}/v1/eval-runs/${runId}/events`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
    const list = await api<{ data: { id: string }[] }>(s.baseUrl, 'GET', `/v1/datasets/${datasetId}/runs`, key);
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([]);

    // the answer did not wait for the results: they are all still there, marked
    expect(await runRows(s, [runId])).toEqual({ ...before, runs: 0 });
    expect(await deletionsLeft(s)).toBe(1);
    expect(await metric('evalgate_deletions_pending{kind="run"}')).toBe(1);
    // a second delete while it is being deleted: the same answer
    expect(await del(runId)).toEqual({ status: 202, body: { id: runId, status: 'deleting' } });

    const { result, batches, maxRows } = await purge({ batchRows: 500 });
    expect(result).toMatchObject({ finished: 1, more: false, rows: before.results + before.samples + before.chunks });
    expect(maxRows).toBeLessThanOrEqual(500);
    // results: 500 + 500 + 200; samples: ⌈samples / 500⌉ (the last one short, or one more empty); chunks: 12
    expect(batches.filter((x) => x.table === 'eval_run_items').map((x) => x.rows)).toEqual([500, 500, 200]);
    expect(batches.filter((x) => x.table === 'eval_run_samples').length).toBe(Math.floor(before.samples / 500) + 1);
    expect(batches.filter((x) => x.table === 'eval_run_chunks').map((x) => x.rows)).toEqual([12]);
    expect(await runRows(s, [runId])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
    expect(await deletionsLeft(s)).toBe(0);
    expect(await metric('evalgate_deletions_pending{kind="run"}')).toBe(0);

    // done: now it is simply unknown
    expect(await del(runId)).toEqual({ status: 404, body: { error: `eval run ${runId} not found` } });
    // the other run is whole
    expect(await runRows(s, [kept.runId])).toMatchObject({ runs: 1, results: 300, chunks: 12 });
    await assertCountersExact(em(), kept.runId);
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${kept.runId}`, key)).status).toBe(200);
  });

  it('owners only; another tenant\'s run or an unknown one is 404, a bad id 400', async () => {
    const { runId } = await seededRun(10, 1);
    expect((await del(runId, a.keys.member)).status).toBe(403);
    expect((await del(runId, a.keys.viewer)).status).toBe(403);
    expect(await del(runId, b.keys.owner)).toEqual({ status: 404, body: { error: `eval run ${runId} not found` } });
    expect((await del('00000000-0000-7000-8000-000000000abc')).status).toBe(404);
    expect((await del('not-a-uuid')).status).toBe(400);
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${runId}`, a.keys.viewer)).status).toBe(200);
    expect(await runRows(s, [runId])).toMatchObject({ runs: 1, results: 10 });
  });

  it('a pending or running run is refused with 409 (cancel it first); canceled, it can be deleted', async () => {
    const datasetId = await seedDataset(s.container, a.id, 5);
    const run = await api<{ id: string }>(s.baseUrl, 'POST', `/v1/datasets/${datasetId}/runs`, a.keys.member, { eval_version_id: evalVersionId });
    expect(run.status).toBe(202);
    const pending = await del(run.body.id);
    expect(pending.status).toBe(409);
    expect(pending.body.error).toMatch(/is pending; cancel it first/);
    await sql(em(), `update eval_runs set status = 'running' where id = ?`, [run.body.id]);
    expect((await del(run.body.id)).body.error).toMatch(/is running; cancel it first/);
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.body.id}/cancel`, a.keys.member)).status).toBe(202);
    expect(await del(run.body.id)).toEqual({ status: 202, body: { id: run.body.id, status: 'deleting' } });
    await purge();
    expect(await deletionsLeft(s)).toBe(0);
  });

  it('a run whose samples an active re-score uses is refused with 409', async () => {
    const { datasetId, runId } = await seededRun(5, 1);
    // a re-score of the run's samples, still running (written as scheduling would: outputs_from_run_id)
    const rescore = await seedCompletedRun(s.container, a.id, datasetId, evalVersionId);
    await sql(em(), `update eval_runs set status = 'running', completed_at = null, outputs_from_run_id = ? where id = ?`, [runId, rescore]);
    const refused = await del(runId);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatch(new RegExp(`re-scored by run ${rescore}`));
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${rescore}/cancel`, a.keys.member)).status).toBe(202);
    expect((await del(runId)).status).toBe(202);
    await purge();
  });

  it('a chunk still in flight records nothing for a deleted run, and claims no sample', async () => {
    const { runId } = await seededRun(3, 1);
    // a canceled run with a chunk mid-flight: what that chunk would do after the delete
    expect((await del(runId)).status).toBe(202);
    const out = await recordResults(em(), { run_id: runId, tenant_id: a.id }, 0, 1, [
      { item_id: '00000000-0000-7000-8000-000000000001', status: 'passed', score: 1, passed: true, reason: null, error: null, latency_ms: 1 },
    ], true);
    expect(out).toBeNull();
    expect((await claimAttempts(em(), runId, a.id, [{ itemId: '00000000-0000-7000-8000-000000000002', repetition: 0 }])).size).toBe(0);
    await purge();
    expect(await runRows(s, [runId])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
  });

  it('waits for a chunk statement that holds the run, and purges what it recorded', async () => {
    const { runId } = await seededRun(20, 1);
    // what recordResults does before it commits: holds the run FOR KEY SHARE and inserts results
    let commit!: () => void;
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const recording = em().transactional(async (tx) => {
      await sql(tx, 'select 1 from eval_runs where id = ? for key share', [runId]);
      await sql(
        tx,
        `insert into eval_run_items (run_id, item_id, tenant_id, status, score, passed, attempts, latency_ms, created_at)
         values (?, gen_random_uuid(), ?, 'passed', 1, true, 1, 0, now())`,
        [runId, a.id],
      );
      locked();
      await new Promise<void>((r) => (commit = r));
    });
    await isLocked;
    const deleting = del(runId);
    // the delete is blocked on the run's row lock (seen in pg_stat_activity, not timed)
    await waitFor(async () => {
      const [w] = await sql<{ n: number }>(
        em(),
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like 'delete from eval_runs r%'`,
      );
      return (w?.n ?? 0) > 0;
    }, { what: 'the delete waiting for the chunk statement' });
    expect(await runRows(s, [runId])).toMatchObject({ runs: 1 });
    commit();
    await recording;
    expect(await deleting).toEqual({ status: 202, body: { id: runId, status: 'deleting' } });
    expect((await runRows(s, [runId])).results).toBe(21);
    await purge();
    expect(await runRows(s, [runId])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
  });

  it('an export under way when its run is deleted fails instead of ending short', async () => {
    // ~30 MB of results: the server is pages behind the delete, whatever the socket buffers hold
    const datasetId = await seedDataset(s.container, a.id, 3_000, { padBytes: 10_000 });
    const runId = await seedCompletedRun(s.container, a.id, datasetId, evalVersionId);
    const res = await fetch(`${s.baseUrl}/v1/eval-runs/${runId}/items/export`, { headers: { authorization: `Bearer ${a.keys.viewer}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const first = await reader.read();
    expect(first.done).toBe(false);
    let text = decoder.decode(first.value, { stream: true });
    expect((await del(runId)).status).toBe(202);
    await purge();
    const outcome = await (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return 'ended';
          text += decoder.decode(value, { stream: true });
        }
      } catch {
        return 'failed';
      }
    })();
    const lines = text.split('\n').filter((l) => l.startsWith('{')).length;
    // a clean end would have to carry every result; this one was cut, having sent fewer
    expect(outcome).toBe('failed');
    expect(lines).toBeLessThan(3_000);
  });

  it('hostile: 50 concurrent DELETEs of one run are all 202 or 404, never a 500, and delete it once', async () => {
    const { runId } = await seededRun(200, 2);
    const answers = await Promise.all(Array.from({ length: 50 }, () => del(runId)));
    const statuses = answers.map((r) => r.status);
    expect(statuses.every((x) => x === 202 || x === 404), JSON.stringify(statuses)).toBe(true);
    // no purge runs in this stack, so the mark outlives every request: each of them is told "deleting"
    expect(statuses.filter((x) => x === 202).length).toBe(50);
    expect(answers.every((r) => r.status !== 202 || (r.body.id === runId && r.body.status === 'deleting'))).toBe(true);
    const [marks] = await sql<{ n: number }>(em(), `select count(*)::int as n from deletions where kind = 'run' and id = ?`, [runId]);
    expect(marks?.n).toBe(1);
    const { result } = await purge();
    expect(result).toMatchObject({ finished: 1, more: false });
    expect(await runRows(s, [runId])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
  });
});

describe('retention (RESULT_RETENTION_DAYS=30)', () => {
  it('deletes finished runs that ended more than 30 days ago, in bounded sweeps, and keeps recent and active ones', async () => {
    const old1 = await seededRun(50, 1);
    const old2 = await seededRun(50, 1);
    const recent = await seededRun(50, 1);
    const active = await seededRun(50, 1);
    await sql(em(), `update eval_runs set completed_at = now() - interval '40 days' where id = any(?::uuid[])`, [`{${old1.runId},${old2.runId}}`]);
    await sql(em(), `update eval_runs set completed_at = now() - interval '29 days' where id = ?`, [recent.runId]);
    // an active run is never retention's, whatever its timestamps say
    await sql(em(), `update eval_runs set status = 'running', completed_at = now() - interval '400 days' where id = ?`, [active.runId]);

    expect(await sweepDeletions(s.container, log, { runsPerSweep: 1 })).toMatchObject({ expired: 1, pending: true });
    expect(await sweepDeletions(s.container, log, { runsPerSweep: 1 })).toMatchObject({ expired: 1, pending: true });
    expect((await sweepDeletions(s.container, log, { runsPerSweep: 1 })).expired).toBe(0);
    for (const r of [old1, old2]) expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${r.runId}`, a.keys.viewer)).status).toBe(404);
    for (const r of [recent, active]) expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${r.runId}`, a.keys.viewer)).status).toBe(200);

    const { result, maxRows } = await purge({ batchRows: 20 });
    expect(result).toMatchObject({ finished: 2, more: false });
    expect(maxRows).toBeLessThanOrEqual(20);
    expect(await runRows(s, [old1.runId, old2.runId])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
    expect(await runRows(s, [recent.runId])).toMatchObject({ runs: 1, results: 50, chunks: 1 });
    expect(await runRows(s, [active.runId])).toMatchObject({ runs: 1, results: 50, chunks: 1 });
    await assertCountersExact(em(), recent.runId);
    expect((await sweepDeletions(s.container, log)).pending).toBe(false);
    await sql(em(), `update eval_runs set status = 'completed', completed_at = now() where id = ?`, [active.runId]);
  });
});

describe('DELETE /v1/datasets/{id}', () => {
  it('answers 204 at once; the dataset and its runs are 404 right away, its items and results go in the background', async () => {
    const { datasetId, runId } = await seededRun(700, 3);
    const second = await seedCompletedRun(s.container, a.id, datasetId, evalVersionId);
    const other = await seededRun(100, 1);
    const items = async () => (await sql<{ n: number }>(em(), 'select count(*)::int as n from dataset_items where dataset_id = ?', [datasetId]))[0]?.n;
    expect(await items()).toBe(700);

    expect((await api(s.baseUrl, 'DELETE', `/v1/datasets/${datasetId}`, a.keys.owner)).status).toBe(204);
    expect((await api(s.baseUrl, 'GET', `/v1/datasets/${datasetId}`, a.keys.owner)).status).toBe(404);
    expect((await api(s.baseUrl, 'GET', `/v1/datasets/${datasetId}/items`, a.keys.owner)).status).toBe(404);
    for (const id of [runId, second]) expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${id}`, a.keys.owner)).status).toBe(404);
    // not waited for: items and results are all still there, the dataset and both runs marked
    expect(await items()).toBe(700);
    expect(await runRows(s, [runId, second])).toMatchObject({ runs: 0, results: 1_400 });
    expect(await deletionsLeft(s)).toBe(3);

    const { result, batches, maxRows } = await purge({ batchRows: 250 });
    expect(result).toMatchObject({ finished: 3, more: false });
    expect(maxRows).toBeLessThanOrEqual(250);
    expect(batches.filter((x) => x.table === 'dataset_items').map((x) => x.rows)).toEqual([250, 250, 200]);
    expect(await items()).toBe(0);
    expect(await runRows(s, [runId, second])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
    // the other dataset's run is untouched
    expect(await runRows(s, [other.runId])).toMatchObject({ runs: 1, results: 100 });
    await assertCountersExact(em(), other.runId);
    // and so are its items (seeded ids are md5s, not UUIDs the API would answer: counted here)
    expect((await sql<{ n: number }>(em(), 'select count(*)::int as n from dataset_items where dataset_id = ?', [other.datasetId]))[0]?.n).toBe(100);
    expect((await api(s.baseUrl, 'GET', `/v1/datasets/${other.datasetId}`, a.keys.viewer)).status).toBe(200);
  });
});

describe('a purge stopped half-way', () => {
  it('leaves its mark; another process\'s reconciler finishes it', async () => {
    // its own database: the first "process" (no workers) deletes a run and purges one batch, then stops
    const first = await startStack({ workers: false, env: { DELETION_BATCH_ROWS: '100' } });
    const t = await makeTenant(first.container, 't');
    const ev = (await makeEval(first.container, t.id)).evalVersionId;
    const ds = await seedDataset(first.container, t.id, 600);
    const runId = await seedCompletedRun(first.container, t.id, ds, ev);
    expect((await api(first.baseUrl, 'DELETE', `/v1/eval-runs/${runId}`, t.keys.owner)).status).toBe(202);
    const once = await purgeDeletions(first.container, log, { maxBatches: 1 });
    expect(once).toMatchObject({ batches: 1, rows: 100, finished: 0, more: true });
    expect((await runRows(first, [runId])).results).toBe(500);
    // "crash": the process goes away without finishing (its queued purge job with it)
    await first.app?.close();
    await first.container.close();
    await deleteKeys(first.redis, `${first.env.EVALGATE_QUEUE_PREFIX}:*`);
    first.redis.disconnect();

    // A new process on the same database: its reconciler's first sweep (at start; the next is an hour away) sees the
    // mark and enqueues the purge; at 10 rows a batch the 500 results take 50 statements, more than one job runs
    // (PURGE_BATCHES_PER_JOB), so the job's own continuation finishes the deletion.
    const second = await startStack({ workers: true, http: false, env: { DATABASE_URL: first.env.DATABASE_URL, RECONCILE_INTERVAL_MS: '3600000', DELETION_BATCH_ROWS: '10' } });
    try {
      await waitFor(async () => (await deletionsLeft(second)) === 0, { what: 'the resumed deletion', timeoutMs: 30_000 });
      expect(await runRows(second, [runId])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
    } finally {
      await second.close();
    }
  });
});
