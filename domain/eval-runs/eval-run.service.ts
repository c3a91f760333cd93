/**
 * eval-runs domain operations shared by the router and the jobs. Hot paths
 * use one SQL statement each instead of the unit of work.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import type { Deps } from '../shared/deps.ts';
import { withDeadline } from '../shared/deadline.ts';
import { DomainError, notFound } from '../shared/errors.ts';
import { cutRows, jsonBytesSql, ROW_OVERHEAD_BYTES } from '../shared/pagination.ts';
import { RateLimitedError } from '../shared/errors.ts';
import { sql } from '../shared/sql.ts';
import { findDataset } from '../datasets/dataset.service.ts';
import { EVAL_RUN_COLUMNS, type EvalRunRow } from './eval-run.mapper.ts';

/** A tenant's caps on scheduling: active (pending + running) runs, and items per run. */
export interface RunCaps {
  maxActiveRuns: number;
  maxItemsPerRun: number;
}

const INT_MAX = 2_147_483_647;
const NO_CAPS: RunCaps = { maxActiveRuns: INT_MAX, maxItemsPerRun: INT_MAX };

/**
 * Inserts a `pending` run pinned to the dataset's latest version, in one
 * statement (one round trip, one transaction), checking the caps in the same
 * statement. What it could not do it says with the first that applies:
 * NOT_FOUND naming what is missing, 422 for a dataset too large for one run,
 * 429 (with Retry-After) when the tenant already has `maxActiveRuns` active.
 *
 * The active count stops at the cap, so the check costs O(min(active, cap)),
 * not O(active). Concurrent requests each see the others' runs only once
 * committed, so a burst can overshoot the cap by the requests in flight.
 */
export async function insertPendingRun(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  evalVersionId: string,
  caps: RunCaps = NO_CAPS,
): Promise<EvalRunRow> {
  const runId = uuidv7();
  const [row] = await sql<EvalRunRow & { ds_found: boolean; ev_found: boolean; active: number; items: number | null }>(
    em,
    `with ds as (
       select d.id as dataset_id, v.id as version_id, v.item_count
         from datasets d
         join dataset_versions v on v.dataset_id = d.id and v.version = d.latest_version
        where d.id = ? and d.tenant_id = ?
     ), ev as (
       select id from eval_versions where id = ? and tenant_id = ?
     ), active as (
       select count(*)::int as n from (select 1 from eval_runs where tenant_id = ? and status in ('pending', 'running') limit ?) a
     ), ins as (
       insert into eval_runs (id, tenant_id, dataset_id, dataset_version_id, eval_version_id, status, item_count,
                              completed_count, passed_count, failed_count, error_count, score_sum, created_at, updated_at)
       select ?, ?, ds.dataset_id, ds.version_id, ev.id, 'pending', ds.item_count, 0, 0, 0, 0, 0, now(), now()
         from ds, ev, active
        where ds.item_count <= ? and active.n < ?
       returning ${EVAL_RUN_COLUMNS}
     )
     select ins.*, exists(select 1 from ds) as ds_found, exists(select 1 from ev) as ev_found,
            (select n from active) as active, (select item_count from ds) as items
       from (select 1) one left join ins on true`,
    [datasetId, tenantId, evalVersionId, tenantId, tenantId, caps.maxActiveRuns, runId, tenantId, caps.maxItemsPerRun, caps.maxActiveRuns],
    { prepare: 'evalgate_insert_pending_run' },
  );
  if (!row) throw new Error('insertPendingRun: the statement returned no row');
  const { ds_found, ev_found, active, items, ...run } = row;
  if (run.id) return run;
  if (!ds_found) throw notFound('dataset', datasetId);
  if (!ev_found) throw notFound('eval version', evalVersionId);
  if (items !== null && items > caps.maxItemsPerRun) {
    throw new DomainError('UNPROCESSABLE_CONTENT', `the dataset's latest version has ${items} items, more than the ${caps.maxItemsPerRun} allowed in one run`);
  }
  throw new RateLimitedError(`this organization already has ${active} pending or running runs (the limit is ${caps.maxActiveRuns}); wait for one to finish`, 10);
}

export async function findRun(em: EntityManager, tenantId: string, runId: string): Promise<EvalRunRow> {
  const rows = await sql<EvalRunRow>(em, `select ${EVAL_RUN_COLUMNS} from eval_runs where id = ? and tenant_id = ?`, [runId, tenantId]);
  const run = rows[0];
  if (!run) throw notFound('eval run', runId);
  return run;
}

/**
 * Enqueues the run's start job (job id = run id). Never throws: when Redis is
 * away the run stays `pending` in Postgres and the reconciler enqueues it.
 */
export async function enqueueRunStart(c: Deps, runId: string): Promise<boolean> {
  try {
    await withDeadline(
      c.producer.runStart(runId),
      2_000,
      'enqueue',
    );
    return true;
  } catch (err) {
    c.log.warn({ runId, err: (err as Error).message }, 'could not enqueue run start; the reconciler will');
    return false;
  }
}

export async function listRuns(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  status: EvalRunRow['status'] | undefined,
  before: string | undefined,
  limit: number,
): Promise<EvalRunRow[]> {
  await findDataset(em, tenantId, datasetId);
  const where = ['dataset_id = ?', 'tenant_id = ?'];
  const params: unknown[] = [datasetId, tenantId];
  if (status) {
    where.push('status = ?');
    params.push(status);
  }
  if (before) {
    where.push('id < ?');
    params.push(before);
  }
  params.push(limit + 1);
  return sql<EvalRunRow>(em, `select ${EVAL_RUN_COLUMNS} from eval_runs where ${where.join(' and ')} order by id desc limit ?`, params);
}

export interface RunItemRow {
  item_id: string;
  status: 'passed' | 'failed' | 'error';
  score: number | null;
  passed: boolean | null;
  reason: string | null;
  error: string | null;
  attempts: number;
  latency_ms: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  cost_usd: number | null;
  input: unknown;
  output: unknown;
  expected_output: unknown;
}

/**
 * A run's results joined with their items, in item order, a keyset page at a
 * time, cut short when the page would exceed `maxBytes` (a single larger row
 * still comes alone).
 */
export async function listRunItems(
  em: EntityManager,
  tenantId: string,
  runId: string,
  status: RunItemRow['status'] | undefined,
  after: string | undefined,
  limit: number,
  maxBytes: number,
): Promise<{ rows: RunItemRow[]; truncated: boolean }> {
  await findRun(em, tenantId, runId);
  const where = ['r.run_id = ?'];
  const params: unknown[] = [runId];
  if (status) {
    where.push('r.status = ?');
    params.push(status);
  }
  if (after) {
    where.push('r.item_id > ?');
    params.push(after);
  }
  params.push(limit + 1, runId, maxBytes);
  const rows = await sql<RunItemRow & { page_rows: number }>(
    em,
    `with page as (
       select r.item_id,
              coalesce(i.size_bytes, ${jsonBytesSql('i.input', 'i.output', 'i.expected_output')}) + ${jsonBytesSql('r.reason', 'r.error')} + ${ROW_OVERHEAD_BYTES} as bytes
         from eval_run_items r join dataset_items i on i.id = r.item_id
        where ${where.join(' and ')}
        order by r.item_id limit ?
     ), cut as (
       select item_id, row_number() over (order by item_id) as n, sum(bytes) over (order by item_id) as running, count(*) over () as page_rows from page
     )
     select r.item_id, r.status, r.score, r.passed, r.reason, r.error, r.attempts, r.latency_ms,
            r.prompt_tokens, r.completion_tokens, r.cost_usd, i.input, i.output, i.expected_output, c.page_rows::int as page_rows
       from cut c
       join eval_run_items r on r.run_id = ? and r.item_id = c.item_id
       join dataset_items i on i.id = r.item_id
      where c.n = 1 or c.running <= ?
      order by r.item_id`,
    params,
  );
  return cutRows(rows);
}

export interface CompareRow {
  item_id: string;
  base_status: RunItemRow['status'];
  head_status: RunItemRow['status'];
  base_score: number | null;
  head_score: number | null;
}

/** Scores of two runs of the tenant side by side, over the items both scored; plus the summary counts. */
export async function compareRuns(em: EntityManager, tenantId: string, baseId: string, headId: string, after: string | undefined, limit: number) {
  const [base, head] = [await findRun(em, tenantId, baseId), await findRun(em, tenantId, headId)];
  const [summary] = await sql<{ improved: number; regressed: number; unchanged: number; not_comparable: number; both: number }>(
    em,
    `select count(*) filter (where b.status <> 'error' and h.status <> 'error' and h.score > b.score + 1e-9)::int as improved,
            count(*) filter (where b.status <> 'error' and h.status <> 'error' and h.score < b.score - 1e-9)::int as regressed,
            count(*) filter (where b.status <> 'error' and h.status <> 'error' and abs(h.score - b.score) <= 1e-9)::int as unchanged,
            count(*) filter (where b.status = 'error' or h.status = 'error')::int as not_comparable,
            count(*)::int as both
       from eval_run_items b join eval_run_items h on h.run_id = ? and h.item_id = b.item_id
      where b.run_id = ?`,
    [headId, baseId],
  );
  const rows = await sql<CompareRow>(
    em,
    `select b.item_id, b.status as base_status, h.status as head_status, b.score as base_score, h.score as head_score
       from eval_run_items b join eval_run_items h on h.run_id = ? and h.item_id = b.item_id
      where b.run_id = ? ${after ? 'and b.item_id > ?' : ''}
      order by b.item_id limit ?`,
    after ? [headId, baseId, after, limit + 1] : [headId, baseId, limit + 1],
  );
  const both = summary?.both ?? 0;
  return {
    base,
    head,
    summary: {
      improved: summary?.improved ?? 0,
      regressed: summary?.regressed ?? 0,
      unchanged: summary?.unchanged ?? 0,
      not_comparable: summary?.not_comparable ?? 0,
      only_in_base: base.completed_count - both,
      only_in_head: head.completed_count - both,
    },
    rows,
  };
}
