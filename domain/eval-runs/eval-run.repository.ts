/**
 * eval-runs' SQL: every statement on eval_runs, eval_run_chunks,
 * eval_run_items, idempotency_keys and reconcile_cursors, each sent through
 * sql(). A function is one statement (two where a caller needs both in
 * order); deciding what to do with the answer is the services' work.
 *
 * Every statement that changes a run's counters also inserts or deletes the
 * results it counts, in the same statement, so
 * `completed_count = count(eval_run_items)` holds after every commit.
 *
 * Keep statement texts and `prepare` names as they are: a prepared name is
 * bound to its text on every pooled connection, and the pgbouncer topology
 * test looks for `evalgate_insert_pending_run` by name.
 */
import type { SampleDto } from './eval-run.schema.ts';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  ACTIVE_RUN_STATUSES,
  FINISHED_RUN_STATUSES,
  type DatasetItem,
  type DatasetVersion,
  type EvalRun,
  type EvalRunChunk,
  type EvalRunItem,
  type IdempotencyKey,
  type ItemStatus,
} from '../../entities/index.ts';
import { jsonBytesSql, ROW_OVERHEAD_BYTES } from '../shared/pagination.ts';
import type { RowOf } from '../shared/row.ts';
import { sql, sqlList } from '../shared/sql.ts';
import type { CriterionScore } from '../evaluators/criteria.ts';
import type { RepetitionOutcome } from './repetition-outcome.ts';

/**
 * A run's per-criterion counters at zero, in the criteria's order, from its eval
 * version's evaluator (`evaluator`, in scope): null for a single evaluator.
 */
const INITIAL_CRITERIA_STATS = `(select jsonb_agg(jsonb_build_object('name', c->>'name', 'passed_count', 0, 'failed_count', 0, 'error_count', 0, 'score_sum', 0) order by o)
         from jsonb_array_elements(case when jsonb_typeof(evaluator->'criteria') = 'array' then evaluator->'criteria' else '[]'::jsonb end)
              with ordinality t(c, o))`;

const ACTIVE = sqlList(ACTIVE_RUN_STATUSES);
const FINISHED = sqlList(FINISHED_RUN_STATUSES);

// ---------------------------------------------------------------- row types

type RunColumn =
  | 'id'
  | 'tenant_id'
  | 'dataset_id'
  | 'dataset_version_id'
  | 'eval_version_id'
  | 'status'
  | 'item_count'
  | 'completed_count'
  | 'passed_count'
  | 'failed_count'
  | 'error_count'
  | 'score_sum'
  | 'prompt_tokens'
  | 'completion_tokens'
  | 'cost_usd'
  | 'started_at'
  | 'completed_at'
  | 'error_message'
  | 'name'
  | 'metadata'
  | 'target'
  | 'outputs_from_run_id'
  | 'use_cache'
  | 'max_cost_usd'
  | 'criteria_stats'
  | 'repetitions'
  | 'repetition_min_passed'
  | 'passed_samples'
  | 'all_passed_count'
  | 'score_sd_sum'
  | 'created_at';

/** An eval_runs row as EVAL_RUN_COLUMNS selects it. */
export type EvalRunRow = Omit<RowOf<typeof EvalRun, RunColumn>, 'score_sum' | 'cost_usd' | 'prompt_tokens' | 'completion_tokens' | 'passed_samples' | 'score_sd_sum'> & {
  score_sum: number;
  score_sd_sum: number;
  passed_samples: number | string;
  cost_usd: number | null;
  // int8: pg hands it over as text
  prompt_tokens: number | string;
  completion_tokens: number | string;
};

export const EVAL_RUN_COLUMNS =
  'id, tenant_id, dataset_id, dataset_version_id, eval_version_id, status, item_count, completed_count, passed_count, failed_count, error_count, score_sum, prompt_tokens, completion_tokens, cost_usd, started_at, completed_at, error_message, name, metadata, target, outputs_from_run_id, use_cache, max_cost_usd, criteria_stats, repetitions, repetition_min_passed, passed_samples, all_passed_count, score_sd_sum, created_at';

type ResultColumn = 'item_id' | 'status' | 'passed' | 'reason' | 'error' | 'attempts' | 'latency_ms' | 'prompt_tokens' | 'completion_tokens';
type ScoredNumbers = { score: number | null; cost_usd: number | null };

/** A result joined with its item, as listEvalRunItems answers it. */
export type RunItemRow = RowOf<typeof EvalRunItem, ResultColumn> &
  ScoredNumbers & { scores: CriterionScore[] | null; repetitions: RepetitionOutcome[] | null; passed_repetitions: number | null; score_sd: number | null } &
  RowOf<typeof DatasetItem, 'input' | 'output' | 'expected_output'> & { sample: SampleDto | null };

/** Only the results whose criterion `name` had this outcome. */
export interface CriterionFilter {
  name: string;
  status: ItemStatus;
}

export type RunForStart = RowOf<typeof EvalRun, 'id' | 'tenant_id' | 'dataset_id' | 'status' | 'item_count'> &
  RowOf<typeof DatasetVersion, 'version'> & { evaluator_type: string; /** it calls a target (or re-scores samples) */ generates: boolean };

export type ChunkContext = RowOf<typeof EvalRunChunk, 'run_id' | 'first_item_id' | 'last_item_id'> &
  RowOf<typeof EvalRun, 'tenant_id' | 'status' | 'eval_version_id' | 'dataset_id' | 'target' | 'outputs_from_run_id' | 'use_cache' | 'max_cost_usd' | 'repetitions' | 'repetition_min_passed'> &
  RowOf<typeof DatasetVersion, 'version'> & { done: boolean; /** the run's recorded cost when the chunk was loaded */ run_cost_usd: number | null };

export type ItemToScore = RowOf<typeof DatasetItem, 'id' | 'input' | 'output' | 'expected_output' | 'metadata'>;

export interface ChunkWork {
  chunk: ChunkContext;
  /** the chunk's items without a result yet in this run, in id order; empty unless the chunk is undone and the run running */
  items: ItemToScore[];
}

/** One result as a worker records it; attempts, tokens and cost are the chunk's defaults when absent. */
export type ItemResult = Pick<RowOf<typeof EvalRunItem>, 'item_id' | 'status' | 'passed' | 'reason' | 'error' | 'latency_ms'> & {
  score: number | null;
  /** each criterion's outcome, for a run with several criteria */
  scores?: readonly CriterionScore[];
  /** each repetition's outcome, for a run with several repetitions */
  repetitions?: readonly RepetitionOutcome[];
  passed_repetitions?: number | null;
  score_sd?: number | null;
  attempts?: number;
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  cost_usd?: number | null;
};

/** What a batch cost at the provider, every attempt included (also for items that were not recorded). */
export interface Spend {
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number | null;
}

export const NO_SPEND: Spend = { prompt_tokens: 0, completion_tokens: 0, cost_usd: null };

export interface RecordOutcome {
  status: EvalRunRow['status'];
  /** the run's recorded cost after this statement (null: nothing priced) */
  cost_usd: number | null;
  completed_count: number;
  item_count: number;
  inserted: number;
  /** this statement is the one that completed the run */
  just_completed: boolean;
}

export interface ActiveRun {
  id: string;
  status: (typeof ACTIVE_RUN_STATUSES)[number];
  /** running, no undone chunk and fewer results than items: nothing would ever finish it */
  orphaned: boolean;
}

export type IdempotencyKeyRow = RowOf<typeof IdempotencyKey, 'request_hash' | 'status'>;

/** The caps scheduling checks in its insert: active (pending + running) runs, and items per run. */
export interface RunCaps {
  maxActiveRuns: number;
  maxItemsPerRun: number;
}

// ---------------------------------------------------------------- text Postgres will store

const UNSTORABLE_SOURCE = '[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]|\\u0000';
const UNSTORABLE = new RegExp(UNSTORABLE_SOURCE);
const UNSTORABLE_ALL = new RegExp(UNSTORABLE_SOURCE, 'g');

/**
 * Text PostgreSQL will store: a lone UTF-16 surrogate (an emoji cut in half by
 * a truncation, or sent as such by a provider) or a NUL makes the whole
 * chunk's statement fail (`unsupported Unicode escape sequence`), on every
 * retry; they become U+FFFD.
 */
export function storableText(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return UNSTORABLE.test(s) ? s.replace(UNSTORABLE_ALL, '\uFFFD') : s;
}

// ---------------------------------------------------------------- scheduling and reads

/** What the caller says about a run: stored with it, returned, filtered on; never read by the run itself. */
export interface RunLabel {
  name?: string;
  metadata?: Record<string, unknown>;
}
const NO_LABEL: RunLabel = {};

/** How a run gets its outputs: a target (null: the stored ones), or another run's samples; the cache and the budget. */
export interface RunPlan {
  target?: Record<string, unknown> | null;
  /** Pins the new run to this run's dataset version (and its items), whose samples it scores. */
  outputsFromRun?: string;
  cache?: boolean;
  maxCostUsd?: number;
  /** each item generated (or read) and scored this many times */
  repetitions?: number;
  /** an item passes when at least this many repetitions pass (default: all) */
  repetitionMinPassed?: number;
}
const NO_PLAN: RunPlan = {};

/**
 * Inserts a `pending` run pinned to the dataset's latest version, checking
 * the caps in the same statement (one round trip, one transaction). No run
 * (`id` null) when something is missing or a cap applies; the flags say
 * which. The active count stops at the cap, so the check costs
 * O(min(active, cap)), not O(active).
 */
export async function insertPendingRunRow(
  em: EntityManager,
  runId: string,
  tenantId: string,
  datasetId: string,
  evalVersionId: string,
  caps: RunCaps,
  label: RunLabel = NO_LABEL,
  plan: RunPlan = NO_PLAN,
): Promise<Partial<EvalRunRow> & { ds_found: boolean; ev_found: boolean; active: number; items: number | null }> {
  // A re-score is pinned to its source run's dataset version (the items whose samples it scores), not the latest.
  const rescore = plan.outputsFromRun !== undefined;
  const ds = rescore
    ? `select d.id as dataset_id, v.id as version_id, v.item_count
         from eval_runs src
         join datasets d on d.id = src.dataset_id
         join dataset_versions v on v.id = src.dataset_version_id
        where d.id = ? and d.tenant_id = ? and src.id = ? and src.tenant_id = ?`
    : `select d.id as dataset_id, v.id as version_id, v.item_count
         from datasets d
         join dataset_versions v on v.dataset_id = d.id and v.version = d.latest_version
        where d.id = ? and d.tenant_id = ?`;
  const [row] = await sql<EvalRunRow & { ds_found: boolean; ev_found: boolean; active: number; items: number | null }>(
    em,
    `with ds as (
       ${ds}
     ), ev as (
       select id, ${INITIAL_CRITERIA_STATS} as criteria_stats from eval_versions where id = ? and tenant_id = ?
     ), active as (
       select count(*)::int as n from (select 1 from eval_runs where tenant_id = ? and status in (${ACTIVE}) limit ?) a
     ), ins as (
       insert into eval_runs (id, tenant_id, dataset_id, dataset_version_id, eval_version_id, status, item_count,
                              completed_count, passed_count, failed_count, error_count, score_sum, name, metadata,
                              target, outputs_from_run_id, use_cache, max_cost_usd, criteria_stats, repetitions, repetition_min_passed,
                              created_at, updated_at)
       select ?, ?, ds.dataset_id, ds.version_id, ev.id, 'pending', ds.item_count, 0, 0, 0, 0, 0, ?, ?::jsonb,
              ?::jsonb, ?::uuid, ?::boolean, ?::float8, ev.criteria_stats, ?::int, ?::int, now(), now()
         from ds, ev, active
        where ds.item_count <= ? and active.n < ?
       returning ${EVAL_RUN_COLUMNS}
     )
     select ins.*, exists(select 1 from ds) as ds_found, exists(select 1 from ev) as ev_found,
            (select n from active) as active, (select item_count from ds) as items
       from (select 1) one left join ins on true`,
    [
      datasetId, tenantId, ...(rescore ? [plan.outputsFromRun, tenantId] : []),
      evalVersionId, tenantId, tenantId, caps.maxActiveRuns, runId, tenantId,
      label.name ?? null, label.metadata === undefined ? null : JSON.stringify(label.metadata),
      plan.target ? JSON.stringify(plan.target) : null, plan.outputsFromRun ?? null, plan.cache ?? true, plan.maxCostUsd ?? null,
      plan.repetitions ?? 1, plan.repetitionMinPassed ?? null,
      caps.maxItemsPerRun, caps.maxActiveRuns,
    ],
    { prepare: rescore ? 'evalgate_insert_rescore_run' : 'evalgate_insert_pending_run' },
  );
  if (!row) throw new Error('insertPendingRun: the statement returned no row');
  return row;
}

/** The tenant's run, or undefined (another tenant's run is as missing as no run). */
export async function findRunRow(em: EntityManager, tenantId: string, runId: string): Promise<EvalRunRow | undefined> {
  const rows = await sql<EvalRunRow>(em, `select ${EVAL_RUN_COLUMNS} from eval_runs where id = ? and tenant_id = ?`, [runId, tenantId]);
  return rows[0];
}

/** Any tenant's run by id (for callers that already hold it, e.g. inside a transaction that checked the tenant). */
export async function findRunById(em: EntityManager, runId: string): Promise<EvalRunRow | undefined> {
  const [run] = await sql<EvalRunRow>(em, `select ${EVAL_RUN_COLUMNS} from eval_runs where id = ?`, [runId]);
  return run;
}

/** The run's status and recorded cost, or undefined once it is gone (the watch of judged and generating chunks polls it). */
export async function runProgress(em: EntityManager, runId: string): Promise<{ status: string; cost_usd: number | null; error_message: string | null } | undefined> {
  const [row] = await sql<{ status: string; cost_usd: number | null; error_message: string | null }>(
    em,
    'select status, cost_usd, error_message from eval_runs where id = ?',
    [runId],
  );
  return row;
}

/** A dataset's runs, newest first (keyset on id), one more than `limit` so the page knows whether more follow. */
export async function listRunRows(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  status: EvalRunRow['status'] | undefined,
  before: string | undefined,
  limit: number,
  label: RunLabel = NO_LABEL,
): Promise<EvalRunRow[]> {
  const where = ['dataset_id = ?', 'tenant_id = ?'];
  const params: unknown[] = [datasetId, tenantId];
  if (status) {
    where.push('status = ?');
    params.push(status);
  }
  if (label.name !== undefined) {
    where.push('name = ?');
    params.push(label.name);
  }
  if (label.metadata !== undefined) {
    where.push('metadata @> ?::jsonb');
    params.push(JSON.stringify(label.metadata));
  }
  if (before) {
    where.push('id < ?');
    params.push(before);
  }
  params.push(limit + 1);
  return sql<EvalRunRow>(em, `select ${EVAL_RUN_COLUMNS} from eval_runs where ${where.join(' and ')} order by id desc limit ?`, params);
}

/** A sample row (alias `s`) as the API shows it; null when the run has none for the item. */
const SAMPLE_JSON = `case when s.run_id is null then null else json_build_object(
       'output', case when s.status = 'done' then coalesce(s.output, to_jsonb(s.output_text)) end,
       'output_text', s.output_text, 'raw_start', s.raw_start, 'finish_reason', s.finish_reason,
       'usage', json_build_object('prompt_tokens', coalesce(s.prompt_tokens, 0), 'completion_tokens', coalesce(s.completion_tokens, 0)),
       'cost_usd', s.cost_usd, 'latency_ms', s.latency_ms, 'attempts', s.attempts, 'cached', s.cached, 'error', s.error) end`;

/**
 * A run's results joined with their items, in item order, a keyset page
 * (one more than `limit`) cut short when it would exceed `maxBytes` (a single
 * larger row still comes alone); `page_rows` is how many the page had before the cut.
 */
export async function listRunItemRows(
  em: EntityManager,
  runId: string,
  status: ItemStatus | undefined,
  after: string | undefined,
  limit: number,
  maxBytes: number,
  criterion?: CriterionFilter,
): Promise<(RunItemRow & { page_rows: number })[]> {
  const where = ['r.run_id = ?'];
  const params: unknown[] = [runId];
  if (status) {
    where.push('r.status = ?');
    params.push(status);
  }
  if (criterion) {
    // an item without that criterion's outcome (its generation failed, its chunk was given up) is the criterion's error
    const has = JSON.stringify([{ name: criterion.name, status: criterion.status }]);
    if (criterion.status === 'error') {
      where.push(`(r.scores @> ?::jsonb or (r.status = 'error' and not coalesce(r.scores @> ?::jsonb, false)))`);
      params.push(has, JSON.stringify([{ name: criterion.name }]));
    } else {
      where.push('r.scores @> ?::jsonb');
      params.push(has);
    }
  }
  if (after) {
    where.push('r.item_id > ?');
    params.push(after);
  }
  params.push(limit + 1, runId, maxBytes);
  // The join to dataset_items is bounded by the run's dataset and the cursor as the results are, so that
  // whichever join the planner picks (a merge join walks dataset_items in id order) it starts at the page,
  // not at the dataset's first item: a page reads O(limit) items at any depth (test/integration/list-plan.test.ts).
  const itemBound = after ? 'and i.dataset_id = (select dataset_id from eval_runs where id = ?) and i.id > ?' : 'and i.dataset_id = (select dataset_id from eval_runs where id = ?)';
  params.unshift(...(after ? [runId, after] : [runId]));
  return sql<RunItemRow & { page_rows: number }>(
    em,
    `with page as (
       select r.item_id,
              coalesce(i.size_bytes, ${jsonBytesSql('i.input', 'i.output', 'i.expected_output')}) + ${jsonBytesSql('r.reason', 'r.error', 'r.scores', 'r.repetitions')} + ${ROW_OVERHEAD_BYTES}
              + coalesce((select ${jsonBytesSql('s.output_text', 's.raw_start', 's.error')} from eval_run_samples s
                           where s.run_id = r.run_id and s.item_id = r.item_id and s.repetition = 0), 0) as bytes
         from eval_run_items r join dataset_items i on i.id = r.item_id ${itemBound}
        where ${where.join(' and ')}
        order by r.item_id limit ?
     ), cut as (
       select item_id, row_number() over (order by item_id) as n, sum(bytes) over (order by item_id) as running, count(*) over () as page_rows from page
     )
     select r.item_id, r.status, r.score, r.passed, r.reason, r.error, r.attempts, r.latency_ms,
            r.prompt_tokens, r.completion_tokens, r.cost_usd, r.scores, r.repetitions, r.passed_repetitions, r.score_sd, i.input, i.output, i.expected_output, c.page_rows::int as page_rows,
            ${SAMPLE_JSON} as sample
       from cut c
       join eval_run_items r on r.run_id = ? and r.item_id = c.item_id
       join dataset_items i on i.id = r.item_id
       left join eval_run_samples s on s.run_id = r.run_id and s.item_id = r.item_id and s.repetition = 0
      where c.n = 1 or c.running <= ?
      order by r.item_id`,
    params,
  );
}

/** Runs per status over every tenant (the metrics gauge). */
export async function countRunsByStatus(em: EntityManager): Promise<{ status: string; n: number }[]> {
  return sql<{ status: string; n: number }>(em, 'select status, count(*)::int as n from eval_runs group by status');
}

// ---------------------------------------------------------------- start

/** The run with what starting it needs, locked for the start's transaction. */
export async function lockRunForStart(em: EntityManager, runId: string): Promise<RunForStart | undefined> {
  const [run] = await sql<RunForStart>(
    em,
    `select r.id, r.tenant_id, r.dataset_id, r.status, r.item_count, v.version, -- criteria with a judge among them are cut like a judge run
            case when ev.evaluator->>'type' = 'criteria'
                      and exists (select 1 from jsonb_array_elements(ev.evaluator->'criteria') c where c->'evaluator'->>'type' = 'llm_judge') then 'llm_judge'
                 else ev.evaluator->>'type' end as evaluator_type,
            r.target is not null as generates
         from eval_runs r
         join dataset_versions v on v.id = r.dataset_version_id
         join eval_versions ev on ev.id = r.eval_version_id
        where r.id = ? for update of r`,
    [runId],
  );
  return run;
}

/** A run over no items is complete as soon as it starts. */
export async function completeEmptyRun(em: EntityManager, runId: string): Promise<void> {
  await sql(
    em,
    `update eval_runs set status = 'completed', started_at = coalesce(started_at, now()), completed_at = now(), updated_at = now()
          where id = ?`,
    [runId],
  );
}

export async function markRunRunning(em: EntityManager, runId: string): Promise<void> {
  await sql(em, `update eval_runs set status = 'running', started_at = coalesce(started_at, now()), updated_at = now() where id = ?`, [runId]);
}

export async function countChunks(em: EntityManager, runId: string): Promise<number> {
  const [existing] = await sql<{ n: number }>(em, 'select count(*)::int as n from eval_run_chunks where run_id = ?', [runId]);
  return existing?.n ?? 0;
}

/**
 * Cuts the run's pinned items into chunks of `chunkSize` in Postgres (a
 * window over the keyset index), so no item reaches this process whatever the
 * dataset's size. Returns how many chunks it wrote.
 */
export async function insertChunks(em: EntityManager, runId: string, run: { dataset_id: string; version: number }, chunkSize: number): Promise<number> {
  const inserted = await sql<{ chunk_index: number }>(
    em,
    `insert into eval_run_chunks (run_id, chunk_index, first_item_id, last_item_id, item_count)
       select ?, b.chunk_index, (array_agg(b.id order by b.rn))[1], (array_agg(b.id order by b.rn desc))[1], max(b.rn) - min(b.rn) + 1
         from (
           select n.id, n.rn, n.rn / ? as chunk_index
             from (
               select id, row_number() over (order by id) - 1 as rn, lead(id) over (order by id) as next_id
                 from dataset_items
                where dataset_id = ? and valid_from <= ? and (valid_to is null or valid_to > ?)
             ) n
            where n.rn % ? = 0 or n.rn % ? = ? - 1 or n.next_id is null
         ) b
        group by b.chunk_index
       returning chunk_index`,
    [runId, chunkSize, run.dataset_id, run.version, run.version, chunkSize, chunkSize, chunkSize],
  );
  return inserted.length;
}

/** Undone chunk indexes of a run, a page at a time (keyset on chunk_index). */
export async function undoneChunks(em: EntityManager, runId: string, after: number, limit: number): Promise<number[]> {
  const rows = await sql<{ chunk_index: number }>(
    em,
    `select chunk_index from eval_run_chunks where run_id = ? and done_at is null and chunk_index > ? order by chunk_index limit ?`,
    [runId, after, limit],
  );
  return rows.map((r) => r.chunk_index);
}

// ---------------------------------------------------------------- chunks

/**
 * One round trip per chunk: the chunk and its run's state (first row, `chunk`
 * as JSON) and, when the chunk is undone and the run running, the chunk's items
 * that have no result yet in this run (the other rows).
 *
 * Looking for existing results is bounded by the chunk: one probe first (a
 * first delivery finds none and skips the per-item check), then per-item
 * probes within the chunk's id range only. Unbounded (`not exists` on run_id
 * and item_id alone), the planner switches mid-run, once statistics show the
 * run's results, to a merge anti-join that reads and sorts every result of
 * the run so far for every chunk: quadratic in the run's size.
 */
export async function loadChunkWork(em: EntityManager, runId: string, chunkIndex: number): Promise<ChunkWork | null> {
  const rows = await sql<{ chunk: (ChunkContext & { has_results: boolean }) | null } & ItemToScore>(
    em,
    `with c as (
       select r.id as run_id, r.tenant_id, r.status, r.eval_version_id, r.dataset_id, v.version,
              r.target, r.outputs_from_run_id, r.use_cache, r.max_cost_usd, r.cost_usd as run_cost_usd,
              r.repetitions, r.repetition_min_passed,
              c.first_item_id, c.last_item_id, c.done_at is not null as done,
              exists (select 1 from eval_run_items x
                       where x.run_id = c.run_id and x.item_id between c.first_item_id and c.last_item_id) as has_results
         from eval_run_chunks c
         join eval_runs r on r.id = c.run_id
         join dataset_versions v on v.id = r.dataset_version_id
        where c.run_id = ? and c.chunk_index = ?
     )
     select row_to_json(c) as chunk, null::uuid as id, null::jsonb as input, null::jsonb as output,
            null::jsonb as expected_output, null::jsonb as metadata
       from c
     union all
     select null, i.id, i.input, i.output, i.expected_output, i.metadata
       from c
       cross join lateral (
         select i.id, i.input, i.output, i.expected_output, i.metadata
           from dataset_items i
          where i.dataset_id = c.dataset_id and i.id between c.first_item_id and c.last_item_id
            and i.valid_from <= c.version and (i.valid_to is null or i.valid_to > c.version)
            and (not c.has_results
                 or not exists (select 1 from eval_run_items x
                                 where x.run_id = c.run_id and x.item_id = i.id
                                   and x.item_id between c.first_item_id and c.last_item_id))
          order by i.id
       ) i
      where not c.done and c.status = 'running'`,
    [runId, chunkIndex],
  );
  let chunk: ChunkContext | null = null;
  const items: ItemToScore[] = [];
  for (const row of rows) {
    if (row.chunk) {
      const { has_results: _, ...ctx } = row.chunk;
      chunk = ctx;
    } else {
      items.push({ id: row.id, input: row.input, output: row.output, expected_output: row.expected_output, metadata: row.metadata });
    }
  }
  return chunk ? { chunk, items } : null;
}

/**
 * CTE `crit`: per criterion of the run (`stats`, an SQL expression giving the
 * run's criteria_stats), what the results of CTE `src` (with their `scores`)
 * count: passed, failed, error and the sum of the scored criteria's scores. A
 * result without that criterion's score (an item whose generation failed, a
 * chunk given up) counts as the criterion's error, so for every criterion
 * passed + failed + error = completed_count. No rows for a run without criteria.
 */
const criteriaDelta = (src: string, stats: string) => `crit as (
       select k.c->>'name' as name,
              (count(*) filter (where e.st = 'passed'))::int as p,
              (count(*) filter (where e.st = 'failed'))::int as f,
              (count(*) filter (where e.st is null or e.st not in ('passed', 'failed')))::int as e,
              coalesce(sum(e.sc) filter (where e.st in ('passed', 'failed')), 0)::float8 as s
         from ${src} i
        cross join lateral jsonb_array_elements(coalesce(${stats}, '[]'::jsonb)) k(c)
         left join lateral (select x->>'status' as st, (x->>'score')::float8 as sc
                              from jsonb_array_elements(case when jsonb_typeof(i.scores) = 'array' then i.scores else '[]'::jsonb end) x
                             where x->>'name' = k.c->>'name' limit 1) e on true
        group by 1
     )`;

/** The SET clause that adds (or, with '-', takes off) CTE `crit` to the run's per-criterion counters, in the run's own row. */
const applyCriteriaDelta = (sign: '+' | '-') => `criteria_stats = case when r.criteria_stats is null then null else (
         select jsonb_agg(k.c || jsonb_build_object(
                  'passed_count', (k.c->>'passed_count')::int ${sign} coalesce(d.p, 0),
                  'failed_count', (k.c->>'failed_count')::int ${sign} coalesce(d.f, 0),
                  'error_count', (k.c->>'error_count')::int ${sign} coalesce(d.e, 0),
                  'score_sum', (k.c->>'score_sum')::float8 ${sign} coalesce(d.s, 0)) order by k.ord)
           from jsonb_array_elements(r.criteria_stats) with ordinality k(c, ord) left join crit d on d.name = k.c->>'name') end`;

/**
 * The end of every statement that adds `agg.n` results to a run (CTE `agg`, target `eval_runs r`, the run id as its
 * last parameter): the statement whose results reach item_count completes the run and says so (just_completed), so
 * each path that ends a run runs its side effects exactly once.
 */
const COMPLETES_ON_LAST_RESULT = `status = case when r.status = 'running' and r.completed_count + agg.n >= r.item_count then 'completed' else r.status end,
       completed_at = case when r.status = 'running' and r.completed_count + agg.n >= r.item_count then now() else r.completed_at end,
       updated_at = now()
     from agg
     where r.id = ?
     returning r.status, r.completed_count, r.item_count, agg.n as inserted, r.cost_usd,
               (r.status = 'completed' and r.completed_count - agg.n < r.item_count) as just_completed`;

/**
 * One statement, so one transaction: insert the results (a duplicate delivery
 * inserts nothing), add exactly the inserted rows to the counters, complete
 * the run when the last item lands, and mark the chunk done when `chunkDone`.
 *
 * eval_run_items has no foreign key to eval_runs (see its entity). The
 * statement instead holds the run FOR KEY SHARE from its start, once: a run
 * being deleted (FOR UPDATE) waits for this statement to commit and then
 * deletes its results too, and a statement that comes after the delete finds
 * no running run and inserts nothing. FOR KEY SHARE does not conflict with
 * the counter updates of concurrent chunks of the same run, nor with a cancel.
 */
export async function recordResults(
  em: EntityManager,
  c: { run_id: string; tenant_id: string },
  chunkIndex: number,
  attempts: number,
  results: readonly ItemResult[],
  chunkDone: boolean,
  spend: Spend = NO_SPEND,
  samples?: readonly SampleRecord[],
): Promise<RecordOutcome | null> {
  // One JSON parameter unpacked by Postgres: a fixed statement whatever the chunk size.
  const payload = JSON.stringify(
    results.map((r) => ({
      ...r,
      reason: storableText(r.reason),
      error: storableText(r.error),
      latency_ms: Math.max(0, Math.round(r.latency_ms)),
      scores: r.scores?.map((c) => ({ ...c, reason: storableText(c.reason), error: storableText(c.error) })) ?? null,
    })),
  );
  // A generating run writes each item's sample in the statement that inserts its result (and only with it: a
  // result that was already there keeps the sample it was scored on), and fills the tenant's cache.
  const sampleCtes = samples === undefined ? '' : `, samp as (
       insert into eval_run_samples as s (run_id, item_id, repetition, tenant_id, status, attempts, output_text, output, raw_start,
                                          finish_reason, prompt_tokens, completion_tokens, cost_usd, latency_ms, cached, error, created_at, updated_at)
       select ?, x.item_id, coalesce(x.repetition, 0), ?, x.status, x.attempts, x.output_text, x.output, x.raw_start, x.finish_reason,
              x.prompt_tokens, x.completion_tokens, x.cost_usd, x.latency_ms, x.cached, x.error, now(), now()
         from json_to_recordset(?::json)
              as x(item_id uuid, repetition int, status text, attempts int, output_text text, output jsonb, raw_start text, finish_reason text,
                   prompt_tokens int, completion_tokens int, cost_usd float8, latency_ms int, cached bool, error text, cache_key text)
        where x.item_id in (select item_id from ins)
       on conflict (run_id, item_id, repetition) do update
          set status = excluded.status, attempts = greatest(s.attempts, excluded.attempts), output_text = excluded.output_text,
              output = excluded.output, raw_start = excluded.raw_start, finish_reason = excluded.finish_reason,
              prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, cost_usd = excluded.cost_usd,
              latency_ms = excluded.latency_ms, cached = excluded.cached, error = excluded.error, updated_at = now()
       returning 1
     ), cache as (
       insert into sample_cache (tenant_id, key, output_text, output, finish_reason, prompt_tokens, completion_tokens, created_at)
       select ?, x.cache_key, x.output_text, x.output, x.finish_reason, x.prompt_tokens, x.completion_tokens, now()
         from json_to_recordset(?::json)
              as x(status text, output_text text, output jsonb, finish_reason text, prompt_tokens int, completion_tokens int, cached bool, cache_key text)
        where x.status = 'done' and not x.cached and x.cache_key is not null
       on conflict (tenant_id, key) do nothing
       returning 1
     )`;
  const samplesPayload = samples === undefined ? '' : JSON.stringify(samples.map(storableSample));
  const [row] = await sql<RecordOutcome>(
    em,
    `with run as (
       -- a canceled (failed) run takes no more results, even from a chunk that was mid-flight;
       -- the lock keeps the run (and so these results' owner) from being deleted until commit
       select criteria_stats, repetitions from eval_runs where id = ? and status = 'running' for key share
     ), ins as (
       insert into eval_run_items (run_id, item_id, tenant_id, status, score, passed, reason, error, attempts, latency_ms,
                                   prompt_tokens, completion_tokens, cost_usd, scores, repetitions, passed_repetitions, score_sd, created_at)
       select ?, x.item_id, ?, x.status, x.score, x.passed, x.reason, x.error, coalesce(x.attempts, ?), x.latency_ms,
              x.prompt_tokens, x.completion_tokens, x.cost_usd, x.scores, x.repetitions, x.passed_repetitions, x.score_sd, now()
         -- json, not jsonb: parsed once and read once, building a jsonb value first only costs CPU
         from json_to_recordset(?::json)
              as x(item_id uuid, status text, score float8, passed bool, reason text, error text, latency_ms int, attempts int,
                   prompt_tokens int, completion_tokens int, cost_usd float8, scores jsonb, repetitions jsonb, passed_repetitions int,
                   score_sd float8)
        where exists (select 1 from run)
       on conflict (run_id, item_id) do nothing
       returning ${samples === undefined ? '' : 'item_id, '}status, score, scores, passed_repetitions, score_sd
     )${sampleCtes}, ${criteriaDelta('ins', '(select criteria_stats from run)')}, agg as (
       select count(*)::int as n,
              (count(*) filter (where status = 'passed'))::int as p,
              (count(*) filter (where status = 'failed'))::int as f,
              (count(*) filter (where status = 'error'))::int as e,
              coalesce(sum(score) filter (where status <> 'error'), 0) as s,
              -- one repetition: a passed item is one passed sample
              coalesce(sum(coalesce(passed_repetitions, case when status = 'passed' then 1 else 0 end)) filter (where status <> 'error'), 0)::bigint as ps,
              coalesce(sum(score_sd) filter (where status <> 'error'), 0)::float8 as sd,
              (count(*) filter (where status <> 'error'
                                  and coalesce(passed_repetitions, case when status = 'passed' then 1 else 0 end) = (select repetitions from run)))::int as ap
         from ins
     ), chunk as (
       -- done only while the run takes results (a chunk landing after a cancel stays undone, so a retry
       -- scores it) and only when every item of the chunk has its result: the results it had (this
       -- statement's snapshot) plus those this statement inserted. A retry that deleted error results
       -- of a chunk still in flight thus leaves that chunk undone for the next delivery.
       update eval_run_chunks c set done_at = now()
        where c.run_id = ? and c.chunk_index = ? and c.done_at is null and ?::boolean
          and exists (select 1 from run)
          and c.item_count <= (select n from agg)
                              + (select count(*) from eval_run_items x
                                  where x.run_id = c.run_id and x.item_id between c.first_item_id and c.last_item_id)
       returning 1
     )
     update eval_runs r set
       completed_count = r.completed_count + agg.n,
       passed_count = r.passed_count + agg.p,
       failed_count = r.failed_count + agg.f,
       error_count = r.error_count + agg.e,
       score_sum = r.score_sum + agg.s,
       prompt_tokens = r.prompt_tokens + ?::bigint,
       completion_tokens = r.completion_tokens + ?::bigint,
       cost_usd = case when ?::float8 is null then r.cost_usd else coalesce(r.cost_usd, 0) + ?::float8 end,
       ${applyCriteriaDelta('+')},
       passed_samples = r.passed_samples + agg.ps,
       score_sd_sum = r.score_sd_sum + agg.sd,
       all_passed_count = r.all_passed_count + agg.ap,
       ${COMPLETES_ON_LAST_RESULT}`,
    [
      c.run_id,
      c.run_id,
      c.tenant_id,
      attempts,
      payload,
      ...(samples === undefined ? [] : [c.run_id, c.tenant_id, samplesPayload, c.tenant_id, samplesPayload]),
      c.run_id,
      chunkIndex,
      chunkDone,
      spend.prompt_tokens,
      spend.completion_tokens,
      spend.cost_usd,
      spend.cost_usd,
      c.run_id,
    ],
  );
  return row ?? null;
}

/** A sample as recordResults writes it: the outcome of generating one item (or what it was copied or reused from). */
export interface SampleRecord {
  item_id: string;
  /** which of the item's repetitions (0 when the run has one) */
  repetition?: number;
  status: 'done' | 'error';
  attempts: number;
  output_text: string | null;
  /** the parsed output (JSON targets); undefined/null for text */
  output?: unknown;
  raw_start: string | null;
  finish_reason: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number | null;
  latency_ms: number;
  cached: boolean;
  error: string | null;
  /** set when a fresh success may fill the cache */
  cache_key: string | null;
}

/** A generated output is stored whole up to this size (a text column; the API pages by bytes). */
export const MAX_SAMPLE_TEXT = 1_000_000;

/** jsonb refuses NUL and unpaired surrogates (JSON.stringify writes them as escapes): such a value is kept as text only. */
function storableJson(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  return /\\u0000|\\ud[89a-f][0-9a-f]{2}/i.test(JSON.stringify(value)) ? null : value;
}

function storableSample(x: SampleRecord) {
  const text = x.output_text === null ? null : x.output_text.length > MAX_SAMPLE_TEXT ? `${x.output_text.slice(0, MAX_SAMPLE_TEXT)}…` : x.output_text;
  return {
    ...x,
    output_text: storableText(text),
    output: storableJson(x.output),
    raw_start: storableText(x.raw_start),
    error: storableText(x.error),
    latency_ms: Math.max(0, Math.round(x.latency_ms)),
    // reused (cached, copied) samples are not written back to the cache
    cache_key: x.cached ? null : x.cache_key,
  };
}

/** A sample of a run already recorded (or claimed), by item. */
export interface StoredSample {
  item_id: string;
  repetition: number;
  status: 'pending' | 'done' | 'error';
  attempts: number;
  output_text: string | null;
  output: unknown;
  raw_start: string | null;
  finish_reason: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  cost_usd: number | null;
  latency_ms: number | null;
  cached: boolean;
  error: string | null;
}

/** The run's samples (every repetition) of these items, whatever their status. */
export async function samplesOf(em: EntityManager, runId: string, itemIds: readonly string[]): Promise<StoredSample[]> {
  if (itemIds.length === 0) return [];
  return sql<StoredSample>(
    em,
    `select item_id, repetition, status, attempts, output_text, output, raw_start, finish_reason, prompt_tokens, completion_tokens, cost_usd,
            latency_ms, cached, error
       from eval_run_samples where run_id = ? and item_id = any(?::uuid[])`,
    [runId, `{${itemIds.join(',')}}`],
  );
}

/** The tenant's cached samples among these keys. */
export async function cachedSamples(
  em: EntityManager,
  tenantId: string,
  keys: readonly string[],
): Promise<{ key: string; output_text: string; output: unknown; finish_reason: string | null }[]> {
  if (keys.length === 0) return [];
  return sql(em, 'select key, output_text, output, finish_reason from sample_cache where tenant_id = ? and key = any(?::text[])', [tenantId, `{${keys.join(',')}}`]);
}

/**
 * Counts one more call for each of these items, before the calls are sent:
 * creates their `pending` samples or adds one to their attempts. Items whose
 * sample already has an outcome are not returned (their generation is over).
 */
export async function claimAttempts(
  em: EntityManager,
  runId: string,
  tenantId: string,
  units: readonly { itemId: string; repetition: number }[],
): Promise<Map<string, number>> {
  const rows = await sql<{ item_id: string; repetition: number; attempts: number }>(
    em,
    // only while the run exists (FOR KEY SHARE: a delete waits for this commit): no sample outlives a deleted run's purge
    `insert into eval_run_samples as s (run_id, item_id, repetition, tenant_id, status, attempts, created_at, updated_at)
     select ?, x.item_id, x.repetition, ?, 'pending', 1, now(), now() from unnest(?::uuid[], ?::int[]) as x(item_id, repetition)
      where exists (select 1 from eval_runs where id = ? for key share)
     on conflict (run_id, item_id, repetition) do update set attempts = s.attempts + 1, updated_at = now()
      where s.status = 'pending'
     returning item_id, repetition, attempts`,
    [runId, tenantId, `{${units.map((u) => u.itemId).join(',')}}`, `{${units.map((u) => u.repetition).join(',')}}`, runId],
  );
  return new Map(rows.map((r) => [unitKey(r.item_id, r.repetition), r.attempts]));
}

/** How a (item, repetition) pair is keyed in maps. */
export const unitKey = (itemId: string, repetition: number) => `${itemId}#${repetition}`;

/** Ends a run `failed` unless it already ended (scoped to `tenantId` when given). Returns the run when this call ended it. */
export async function failRun(em: EntityManager, runId: string, message: string, tenantId?: string): Promise<EvalRunRow | null> {
  const rows = await sql<EvalRunRow>(
    em,
    `update eval_runs set status = 'failed', error_message = ?, completed_at = now(), updated_at = now()
      where id = ? ${tenantId ? 'and tenant_id = ?' : ''} and status in (${ACTIVE})
      returning ${EVAL_RUN_COLUMNS}`,
    tenantId ? [message.slice(0, 2000), runId, tenantId] : [message.slice(0, 2000), runId],
  );
  return rows[0] ?? null;
}

/** The tenant's run, locked for a retry's transaction. */
export async function lockRunForRetry(em: EntityManager, tenantId: string, runId: string): Promise<EvalRunRow | undefined> {
  const [current] = await sql<EvalRunRow>(em, `select ${EVAL_RUN_COLUMNS} from eval_runs where id = ? and tenant_id = ? for update`, [runId, tenantId]);
  return current;
}

/**
 * Deletes the run's error results and takes exactly them off the counters
 * (one statement), re-opens every chunk that held an error or lacks a result
 * for any of its items, clears their crash counts and sets the run running
 * again. Returns how many results it deleted.
 */
export async function reopenErrorItems(em: EntityManager, tenantId: string, runId: string): Promise<number> {
  const [deleted] = await sql<{ n: number }>(
    em,
    `with del as (
         delete from eval_run_items where run_id = ? and tenant_id = ? and status = 'error' returning item_id, scores
       ), ${criteriaDelta('del', '(select criteria_stats from eval_runs where id = ?)')}, reopened as (
         update eval_run_chunks c set done_at = null, crash_count = 0
          where c.run_id = ?
            and (exists (select 1 from del where del.item_id between c.first_item_id and c.last_item_id)
                 or c.item_count > (select count(*) from eval_run_items x
                                     where x.run_id = c.run_id and x.item_id between c.first_item_id and c.last_item_id))
         returning 1
       ), samples as (
         -- an item tried again is generated afresh: its failed or unfinished sample goes (a done one stays, and is re-scored)
         delete from eval_run_samples s
          where s.run_id = ? and s.status <> 'done'
            and (s.item_id in (select item_id from del)
                 or not exists (select 1 from eval_run_items x where x.run_id = s.run_id and x.item_id = s.item_id))
         returning 1
       ), agg as (select count(*)::int as n from del)
       update eval_runs r set
         completed_count = r.completed_count - agg.n,
         error_count = r.error_count - agg.n,
         ${applyCriteriaDelta('-')},
         status = 'running', completed_at = null, error_message = null, notified_at = null, updated_at = now()
       from agg where r.id = ?
       returning agg.n as n`,
    [runId, tenantId, runId, runId, runId, runId],
  );
  return deleted?.n ?? 0;
}

/**
 * Re-opens the done chunks of a running run that lack a result for some of
 * their items. Only the reconciler calls it, for a run that is running with
 * no undone chunk and fewer results than items: nothing would ever finish such
 * a run (a run retried after a cancel by an older version was left so).
 */
export async function reopenIncompleteChunks(em: EntityManager, runId: string): Promise<number> {
  const rows = await sql<{ chunk_index: number }>(
    em,
    `update eval_run_chunks c set done_at = null
      where c.run_id = ? and c.done_at is not null
        and exists (select 1 from eval_runs r where r.id = c.run_id and r.status = 'running')
        and c.item_count > (select count(*) from eval_run_items x
                             where x.run_id = c.run_id and x.item_id between c.first_item_id and c.last_item_id)
      returning c.chunk_index`,
    [runId],
  );
  return rows.length;
}

/**
 * A worker takes the chunk: counts the start in Postgres before any item is
 * loaded, so a chunk that kills its process (out of memory, a native crash)
 * is counted even though nothing after this line ran. Returns the starts that
 * never ended before this one (see endChunk), or null when the chunk is done
 * or its run no longer running (the caller's normal path says which).
 */
export async function beginChunk(
  em: EntityManager,
  runId: string,
  chunkIndex: number,
  opts: { onlyIfClean?: boolean } = {},
): Promise<{ crashes: number } | null> {
  const [row] = await sql<{ crashes: number }>(
    em,
    `update eval_run_chunks c set crash_count = c.crash_count + 1
       from eval_runs r
      where c.run_id = ? and c.chunk_index = ? and c.done_at is null and r.id = c.run_id and r.status = 'running'
        and (c.crash_count = 0 or not ?::boolean)
      returning c.crash_count - 1 as crashes`,
    [runId, chunkIndex, opts.onlyIfClean ?? false],
  );
  return row ?? null;
}

/** The chunk's crash count, or null when it is done or its run no longer running. */
export async function chunkCrashes(em: EntityManager, runId: string, chunkIndex: number): Promise<number | null> {
  const [row] = await sql<{ crash_count: number }>(
    em,
    `select c.crash_count from eval_run_chunks c join eval_runs r on r.id = c.run_id
      where c.run_id = ? and c.chunk_index = ? and c.done_at is null and r.status = 'running'`,
    [runId, chunkIndex],
  );
  return row ? row.crash_count : null;
}

/**
 * The start counted by beginChunk ended in this process's hands (recorded,
 * skipped, or failed with an error BullMQ retries): it was no crash. A start
 * whose process died never gets here, and so stays counted.
 */
export async function endChunk(em: EntityManager, runId: string, chunkIndex: number): Promise<void> {
  await sql(em, `update eval_run_chunks set crash_count = greatest(crash_count - 1, 0) where run_id = ? and chunk_index = ?`, [runId, chunkIndex]);
}

/**
 * Ends a chunk that crashed its workers too often: every item of the chunk
 * without a result gets an `error` result with `message`, the counters take
 * exactly those, the chunk is done and the run completes if this was its last
 * chunk, in one statement like recordResults. The items are selected and
 * written inside Postgres: loading them may be what killed the workers.
 */
export async function failChunk(em: EntityManager, runId: string, chunkIndex: number, attempts: number, message: string): Promise<RecordOutcome | null> {
  const [row] = await sql<RecordOutcome>(
    em,
    `with run as (
       select r.tenant_id, r.dataset_id, v.version, r.criteria_stats
         from eval_runs r join dataset_versions v on v.id = r.dataset_version_id
        where r.id = ? and r.status = 'running'
          for key share of r
     ), c as (
       select first_item_id, last_item_id from eval_run_chunks where run_id = ? and chunk_index = ? and done_at is null
     ), ins as (
       insert into eval_run_items (run_id, item_id, tenant_id, status, score, passed, reason, error, attempts, latency_ms, created_at)
       select ?, i.id, run.tenant_id, 'error', null, null, null, ?, ?, 0, now()
         from run, c, dataset_items i
        where i.dataset_id = run.dataset_id and i.id between c.first_item_id and c.last_item_id
          and i.valid_from <= run.version and (i.valid_to is null or i.valid_to > run.version)
       on conflict (run_id, item_id) do nothing
       returning null::jsonb as scores
     ), ${criteriaDelta('ins', '(select criteria_stats from run)')}, agg as (
       select count(*)::int as n from ins
     ), chunk as (
       update eval_run_chunks set done_at = now()
        where run_id = ? and chunk_index = ? and done_at is null and exists (select 1 from run)
       returning 1
     )
     update eval_runs r set
       completed_count = r.completed_count + agg.n,
       error_count = r.error_count + agg.n,
       ${applyCriteriaDelta('+')},
       ${COMPLETES_ON_LAST_RESULT}`,
    [runId, runId, chunkIndex, runId, storableText(message), attempts, runId, chunkIndex, runId],
  );
  return row ?? null;
}

// ---------------------------------------------------------------- idempotency keys

/**
 * Claims the key for this request in its own statement: a new key, an
 * expired one, or this very request's claim gone stale (its request died
 * before committing). False when someone else holds it.
 */
export async function claimIdempotencyKey(
  em: EntityManager,
  tenantId: string,
  key: string,
  requestHash: string,
  ttlHours: number,
  staleClaimSeconds: number,
): Promise<boolean> {
  const claimed = await sql(
    em,
    `insert into idempotency_keys (tenant_id, key, request_hash, status, created_at, updated_at, expires_at)
     values (?, ?, ?, 'in_flight', now(), now(), now() + make_interval(hours => ?))
     on conflict (tenant_id, key) do update
        set request_hash = excluded.request_hash, status = 'in_flight', run_id = null, response = null,
            created_at = now(), updated_at = now(), expires_at = excluded.expires_at
      where idempotency_keys.expires_at < now()
         or (idempotency_keys.status = 'in_flight' and idempotency_keys.request_hash = excluded.request_hash
             and idempotency_keys.updated_at < now() - make_interval(secs => ?))
     returning 1 as claimed`,
    [tenantId, key, requestHash, ttlHours, staleClaimSeconds],
  );
  return claimed.length > 0;
}

export async function findIdempotencyKey<R>(em: EntityManager, tenantId: string, key: string): Promise<(IdempotencyKeyRow & { response: R | null }) | undefined> {
  const [row] = await sql<IdempotencyKeyRow & { response: R | null }>(
    em,
    'select request_hash, status, response from idempotency_keys where tenant_id = ? and key = ?',
    [tenantId, key],
  );
  return row;
}

/** Stores the answer, in the transaction that created the run. */
export async function completeIdempotencyKey(em: EntityManager, tenantId: string, key: string, runId: string, response: unknown): Promise<void> {
  await sql(
    em,
    `update idempotency_keys set status = 'done', run_id = ?, response = ?::jsonb, updated_at = now() where tenant_id = ? and key = ?`,
    [runId, JSON.stringify(response), tenantId, key],
  );
}

/** Frees a claim whose request created nothing. */
export async function releaseIdempotencyKey(em: EntityManager, tenantId: string, key: string): Promise<void> {
  await sql(em, `delete from idempotency_keys where tenant_id = ? and key = ? and status = 'in_flight'`, [tenantId, key]);
}

/** Drops keys past their lifetime. */
export async function purgeExpiredIdempotencyKeys(em: EntityManager): Promise<number> {
  const rows = await sql(em, 'delete from idempotency_keys where expires_at < now() returning 1');
  return rows.length;
}

// ---------------------------------------------------------------- reconciler

/**
 * The next page of pending and running runs after `after` (from the first
 * when null), and before or at `upTo` when given. Served by eval_runs_active_id_idx.
 */
export async function activeRunsPage(em: EntityManager, after: string | null, upTo: string | null, limit: number): Promise<ActiveRun[]> {
  const where = [`r.status in (${ACTIVE})`];
  const params: unknown[] = [];
  if (after !== null) {
    where.push('r.id > ?');
    params.push(after);
  }
  if (upTo !== null) {
    where.push('r.id <= ?');
    params.push(upTo);
  }
  params.push(limit);
  return sql<ActiveRun>(
    em,
    `select r.id, r.status,
            (r.status = 'running' and r.completed_count < r.item_count
             and not exists (select 1 from eval_run_chunks c where c.run_id = r.id and c.done_at is null)) as orphaned
       from eval_runs r
      where ${where.join(' and ')}
      order by r.id
      limit ?`,
    params,
  );
}

export async function readReconcileCursor(em: EntityManager, name: string): Promise<string | null> {
  const [row] = await sql<{ after_id: string | null }>(em, 'select after_id from reconcile_cursors where name = ?', [name]);
  return row?.after_id ?? null;
}

export async function saveReconcileCursor(em: EntityManager, name: string, afterId: string | null): Promise<void> {
  await sql(
    em,
    `insert into reconcile_cursors (name, after_id, updated_at) values (?, ?, now())
     on conflict (name) do update set after_id = excluded.after_id, updated_at = now()`,
    [name, afterId],
  );
}

// ---------------------------------------------------------------- for the webhooks and datasets features

/** An ending's key: completed_at in whole epoch milliseconds (computed by Postgres, so both sides agree). */
export const ENDING_SQL = `floor(extract(epoch from completed_at) * 1000)::bigint`;

/** A finished run whose current ending has not been notified yet: its tenant and ending (int8 as text). */
export async function unnotifiedEnding(em: EntityManager, runId: string): Promise<{ tenant_id: string; ending: string } | undefined> {
  const [run] = await sql<{ tenant_id: string; ending: string }>(
    em,
    `select tenant_id, ${ENDING_SQL} as ending from eval_runs
      where id = ? and notified_at is null and status in (${FINISHED}) and completed_at is not null`,
    [runId],
  );
  return run;
}

/** Marks this ending notified; a later ending (a retry re-opened and re-ended the run) is still owed. */
export async function markRunNotified(em: EntityManager, runId: string, ending: number): Promise<void> {
  await sql(em, `update eval_runs set notified_at = now() where id = ? and notified_at is null and ${ENDING_SQL} = ?`, [runId, ending]);
}

/** Finished runs whose deliveries were never enqueued, oldest ending first (partial index eval_runs_unnotified_idx). */
export async function unnotifiedRunIds(em: EntityManager, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }>(
    em,
    `select id from eval_runs where notified_at is null and status in (${FINISHED}) order by completed_at limit ?`,
    [limit],
  );
  return rows.map((r) => r.id);
}

/** The tenant's run for a webhook delivery, with its ending and whether this webhook already got it. */
export async function runForDelivery(
  em: EntityManager,
  webhookId: string,
  runId: string,
  tenantId: string,
): Promise<(EvalRunRow & { ending: string; delivered: boolean }) | undefined> {
  const [run] = await sql<EvalRunRow & { ending: string; delivered: boolean }>(
    em,
    `select ${EVAL_RUN_COLUMNS}, ${ENDING_SQL} as ending,
            exists (select 1 from webhook_deliveries d
                     where d.webhook_id = ? and d.run_id = r.id and d.run_ended_at = r.completed_at
                       and d.status_code between 200 and 299) as delivered
       from eval_runs r where r.id = ? and r.tenant_id = ?`,
    [webhookId, runId, tenantId],
  );
  return run;
}

/** A dataset's runs, locked for its deletion. */
export async function lockDatasetRuns(em: EntityManager, datasetId: string): Promise<{ id: string; status: string }[]> {
  return sql<{ id: string; status: string }>(em, 'select id, status from eval_runs where dataset_id = ? for update', [datasetId]);
}
