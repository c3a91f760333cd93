/**
 * Completed runs written straight into PostgreSQL with generate_series (no
 * upload, no workers): a dataset of `items` items and one result per item, for
 * tests and benches of what reads results (exports, compares) at sizes the
 * pipeline would take minutes to produce. The rows are what the pipeline
 * writes for exact_match: the run's counters equal its results.
 */
import { createDataset } from '../../domain/datasets/dataset.service.ts';
import { insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import { sql } from '../../domain/shared/sql.ts';
import type { Container } from '../../server/container.ts';

/**
 * A dataset at version 1 holding `items` items (item g: `{ question, pad }`, expected `answer g`; 1 in `failEvery` has a wrong output).
 * Item ids are md5 hashes shaped as version-4 UUIDs (the API's answers check that an id is an RFC 9562 UUID).
 */
export async function seedDataset(c: Container, tenantId: string, items: number, opts: { padBytes?: number; failEvery?: number } = {}): Promise<string> {
  const em = c.orm.em.fork();
  const { dataset } = await createDataset(em, tenantId, { name: `seeded ${items}` });
  await sql(
    em,
    `insert into dataset_items (id, tenant_id, dataset_id, valid_from, valid_to, input, expected_output, output, metadata, size_bytes, created_at)
     select overlay(overlay(md5(?::text || g) placing '4' from 13) placing '8' from 17)::uuid, ?, ?, 1, null,
            jsonb_build_object('question', 'question ' || g, 'pad', repeat('x', ?::int)),
            to_jsonb('answer ' || g),
            to_jsonb(case when g % ?::int = 0 then 'wrong ' else 'answer ' end || g),
            jsonb_build_object('i', g), null, now()
       from generate_series(1, ?::int) g`,
    [dataset.id, tenantId, dataset.id, opts.padBytes ?? 0, opts.failEvery ?? 10, items],
  );
  await sql(em, 'update dataset_versions set item_count = ? where dataset_id = ? and version = 1', [items, dataset.id]);
  return dataset.id;
}

/**
 * A completed run over every item of the dataset: an item passes unless its
 * number (metadata.i) is a multiple of `failEvery` (score 1 or 0).
 */
export async function seedCompletedRun(c: Container, tenantId: string, datasetId: string, evalVersionId: string, failEvery = 10): Promise<string> {
  const em = c.orm.em.fork();
  const run = await insertPendingRun(em, tenantId, datasetId, evalVersionId);
  await sql(
    em,
    `insert into eval_run_items (run_id, item_id, tenant_id, status, score, passed, reason, error, attempts, latency_ms, created_at)
     select ?, i.id, ?, case when f then 'failed' else 'passed' end, case when f then 0 else 1 end, not f,
            case when f then 'output differs from expected_output' end, null, 1, 0, now()
       from (select id, (metadata->>'i')::int % ?::int = 0 as f from dataset_items where dataset_id = ?) i`,
    [run.id, tenantId, failEvery, datasetId],
  );
  await sql(
    em,
    `update eval_runs r set status = 'completed', started_at = now(), completed_at = now(), updated_at = now(),
            item_count = c.n, completed_count = c.n, passed_count = c.passed, failed_count = c.n - c.passed, score_sum = c.passed
       from (select count(*)::int as n, (count(*) filter (where status = 'passed'))::int as passed from eval_run_items where run_id = ?) c
      where r.id = ?`,
    [run.id, run.id],
  );
  return run.id;
}
