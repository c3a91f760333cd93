/**
 * The SQL of the run lifecycle. Every statement that changes a run's counters
 * also inserts or deletes the results it counts, in the same statement, so
 * `completed_count = count(eval_run_items)` holds after every commit.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ItemStatus } from '../../entities/index.ts';
import { EVAL_RUN_COLUMNS, type EvalRunRow } from './eval-run.mapper.ts';
import { DomainError, notFound } from '../shared/errors.ts';
import { sql } from '../shared/sql.ts';

export interface RunForStart {
  id: string;
  tenant_id: string;
  dataset_id: string;
  status: EvalRunRow['status'];
  item_count: number;
  version: number;
  evaluator_type: string;
}

/**
 * Moves a pending run to running and cuts its pinned items into chunks, in one
 * transaction. The cut happens in Postgres (window over the keyset index), so
 * no item reaches this process whatever the dataset's size. Idempotent: a run
 * already running keeps its chunks.
 */
export async function startRun(
  em: EntityManager,
  runId: string,
  chunkSizeFor: number | ((evaluatorType: string) => number),
): Promise<{ run: RunForStart | null; chunks: number; completedEmpty: boolean }> {
  return em.transactional(async (tx) => {
    const [run] = await sql<RunForStart>(
      tx,
      `select r.id, r.tenant_id, r.dataset_id, r.status, r.item_count, v.version, ev.evaluator->>'type' as evaluator_type
         from eval_runs r
         join dataset_versions v on v.id = r.dataset_version_id
         join eval_versions ev on ev.id = r.eval_version_id
        where r.id = ? for update of r`,
      [runId],
    );
    if (!run || (run.status !== 'pending' && run.status !== 'running')) return { run: run ?? null, chunks: 0, completedEmpty: false };
    if (run.item_count === 0) {
      await sql(
        tx,
        `update eval_runs set status = 'completed', started_at = coalesce(started_at, now()), completed_at = now(), updated_at = now()
          where id = ?`,
        [runId],
      );
      return { run, chunks: 0, completedEmpty: true };
    }
    if (run.status === 'pending') {
      await sql(tx, `update eval_runs set status = 'running', started_at = coalesce(started_at, now()), updated_at = now() where id = ?`, [runId]);
    }
    const [existing] = await sql<{ n: number }>(tx, 'select count(*)::int as n from eval_run_chunks where run_id = ?', [runId]);
    if (existing && existing.n > 0) return { run, chunks: existing.n, completedEmpty: false };
    const chunkSize = typeof chunkSizeFor === 'number' ? chunkSizeFor : chunkSizeFor(run.evaluator_type);
    const inserted = await sql<{ chunk_index: number }>(
      tx,
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
    return { run, chunks: inserted.length, completedEmpty: false };
  });
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

export interface ChunkContext {
  run_id: string;
  tenant_id: string;
  status: EvalRunRow['status'];
  eval_version_id: string;
  dataset_id: string;
  version: number;
  first_item_id: string;
  last_item_id: string;
  done: boolean;
}

export interface ItemToScore {
  id: string;
  input: unknown;
  output: unknown;
  expected_output: unknown;
  metadata: unknown;
}

export interface ChunkWork {
  chunk: ChunkContext;
  /** the chunk's items without a result yet in this run, in id order; empty unless the chunk is undone and the run running */
  items: ItemToScore[];
}

/**
 * One round trip per chunk: the chunk and its run's state (first row, `chunk`
 * as JSON) and, when the chunk is undone and the run running, the chunk's items
 * that have no result yet in this run (the other rows).
 *
 * Looking for existing results is bounded by the chunk: one probe first (a
 * first delivery finds none and skips the per-item check), then per-item
 * probes within the chunk's id range only. Unbounded (`not exists` on run_id
 * and item_id alone), the planner switched mid-run, once statistics showed the
 * run's results, to a merge anti-join that read and sorted every result of the
 * run so far for every chunk: quadratic in the run's size (≈ 250 ms of
 * PostgreSQL CPU per chunk at 90,000 results).
 */
export async function loadChunkWork(em: EntityManager, runId: string, chunkIndex: number): Promise<ChunkWork | null> {
  const rows = await sql<{ chunk: (ChunkContext & { has_results: boolean }) | null } & ItemToScore>(
    em,
    `with c as (
       select r.id as run_id, r.tenant_id, r.status, r.eval_version_id, r.dataset_id, v.version,
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

export interface ItemResult {
  item_id: string;
  status: ItemStatus;
  score: number | null;
  passed: boolean | null;
  reason: string | null;
  error: string | null;
  latency_ms: number;
  attempts?: number;
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  cost_usd?: number | null;
}

/** What a batch cost at the provider, every attempt included (also for items that were not recorded). */
export interface Spend {
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number | null;
}

export const NO_SPEND: Spend = { prompt_tokens: 0, completion_tokens: 0, cost_usd: null };

export interface RecordOutcome {
  status: EvalRunRow['status'];
  completed_count: number;
  item_count: number;
  inserted: number;
  /** this statement is the one that completed the run */
  just_completed: boolean;
}

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

/**
 * The end of every statement that adds `agg.n` results to a run (CTE `agg`, target `eval_runs r`, the run id as its
 * last parameter): the statement whose results reach item_count completes the run and says so (just_completed), so
 * each path that ends a run calls onRunFinished exactly once.
 */
const COMPLETES_ON_LAST_RESULT = `status = case when r.status = 'running' and r.completed_count + agg.n >= r.item_count then 'completed' else r.status end,
       completed_at = case when r.status = 'running' and r.completed_count + agg.n >= r.item_count then now() else r.completed_at end,
       updated_at = now()
     from agg
     where r.id = ?
     returning r.status, r.completed_count, r.item_count, agg.n as inserted,
               (r.status = 'completed' and r.completed_count - agg.n < r.item_count) as just_completed`;

/**
 * One statement, so one transaction: insert the results (a duplicate delivery
 * inserts nothing), add exactly the inserted rows to the counters, complete
 * the run when the last item lands, and mark the chunk done when `chunkDone`.
 *
 * eval_run_items has no foreign key to eval_runs (it cost a check per result).
 * The statement instead holds the run FOR KEY SHARE from its start, once: a
 * run being deleted (FOR UPDATE) waits for this statement to commit and then
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
): Promise<RecordOutcome | null> {
  // One JSON parameter unpacked by Postgres: a fixed statement whatever the chunk size.
  const payload = JSON.stringify(
    results.map((r) => ({ ...r, reason: storableText(r.reason), error: storableText(r.error), latency_ms: Math.max(0, Math.round(r.latency_ms)) })),
  );
  const [row] = await sql<RecordOutcome>(
    em,
    `with run as (
       -- a canceled (failed) run takes no more results, even from a chunk that was mid-flight;
       -- the lock keeps the run (and so these results' owner) from being deleted until commit
       select 1 from eval_runs where id = ? and status = 'running' for key share
     ), ins as (
       insert into eval_run_items (run_id, item_id, tenant_id, status, score, passed, reason, error, attempts, latency_ms,
                                   prompt_tokens, completion_tokens, cost_usd, created_at)
       select ?, x.item_id, ?, x.status, x.score, x.passed, x.reason, x.error, coalesce(x.attempts, ?), x.latency_ms,
              x.prompt_tokens, x.completion_tokens, x.cost_usd, now()
         -- json, not jsonb: parsed once and read once, building a jsonb value first only costs CPU
         from json_to_recordset(?::json)
              as x(item_id uuid, status text, score float8, passed bool, reason text, error text, latency_ms int, attempts int,
                   prompt_tokens int, completion_tokens int, cost_usd float8)
        where exists (select 1 from run)
       on conflict (run_id, item_id) do nothing
       returning status, score
     ), agg as (
       select count(*)::int as n,
              (count(*) filter (where status = 'passed'))::int as p,
              (count(*) filter (where status = 'failed'))::int as f,
              (count(*) filter (where status = 'error'))::int as e,
              coalesce(sum(score) filter (where status <> 'error'), 0) as s
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
       ${COMPLETES_ON_LAST_RESULT}`,
    [
      c.run_id,
      c.run_id,
      c.tenant_id,
      attempts,
      payload,
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

/** Ends a run `failed` unless it already ended. Returns the run when this call ended it. */
export async function failRun(em: EntityManager, runId: string, message: string, tenantId?: string): Promise<EvalRunRow | null> {
  const rows = await sql<EvalRunRow>(
    em,
    `update eval_runs set status = 'failed', error_message = ?, completed_at = now(), updated_at = now()
      where id = ? ${tenantId ? 'and tenant_id = ?' : ''} and status in ('pending', 'running')
      returning ${EVAL_RUN_COLUMNS}`,
    tenantId ? [message.slice(0, 2000), runId, tenantId] : [message.slice(0, 2000), runId],
  );
  return rows[0] ?? null;
}

/**
 * Re-opens a finished run for its `error` items and for the items it never
 * scored (a canceled run): deletes the error results and takes exactly them
 * off the counters (one statement), re-opens every chunk that held an error
 * or lacks a result for any of its items (a chunk in flight at a cancel, or
 * one marked done without its results by an older version), clears their
 * crash counts (the retry is the tenant's explicit request to try again) and
 * sets the run running again. Passed and failed results stay, so every item
 * still ends with exactly one result.
 */
export async function reopenForRetry(em: EntityManager, tenantId: string, runId: string): Promise<{ run: EvalRunRow; removed: number }> {
  return em.transactional(async (tx) => {
    const [current] = await sql<EvalRunRow>(
      tx,
      `select ${EVAL_RUN_COLUMNS} from eval_runs where id = ? and tenant_id = ? for update`,
      [runId, tenantId],
    );
    if (!current) throw notFound('eval run', runId);
    if (current.status === 'pending' || current.status === 'running') {
      throw new DomainError('CONFLICT', `eval run ${runId} is still ${current.status}; retry it once it has finished`);
    }
    if (current.error_count === 0 && current.completed_count >= current.item_count) {
      throw new DomainError('CONFLICT', `eval run ${runId} has no error items to retry`);
    }
    const [deleted] = await sql<{ n: number }>(
      tx,
      `with del as (
         delete from eval_run_items where run_id = ? and tenant_id = ? and status = 'error' returning item_id
       ), reopened as (
         update eval_run_chunks c set done_at = null, crash_count = 0
          where c.run_id = ?
            and (exists (select 1 from del where del.item_id between c.first_item_id and c.last_item_id)
                 or c.item_count > (select count(*) from eval_run_items x
                                     where x.run_id = c.run_id and x.item_id between c.first_item_id and c.last_item_id))
         returning 1
       ), agg as (select count(*)::int as n from del)
       update eval_runs r set
         completed_count = r.completed_count - agg.n,
         error_count = r.error_count - agg.n,
         status = 'running', completed_at = null, error_message = null, notified_at = null, updated_at = now()
       from agg where r.id = ?
       returning agg.n as n`,
      [runId, tenantId, runId, runId],
    );
    const [run] = await sql<EvalRunRow>(tx, `select ${EVAL_RUN_COLUMNS} from eval_runs where id = ?`, [runId]);
    return { run: run as EvalRunRow, removed: deleted?.n ?? 0 };
  });
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
       select r.tenant_id, r.dataset_id, v.version
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
       returning 1
     ), agg as (
       select count(*)::int as n from ins
     ), chunk as (
       update eval_run_chunks set done_at = now()
        where run_id = ? and chunk_index = ? and done_at is null and exists (select 1 from run)
       returning 1
     )
     update eval_runs r set
       completed_count = r.completed_count + agg.n,
       error_count = r.error_count + agg.n,
       ${COMPLETES_ON_LAST_RESULT}`,
    [runId, runId, chunkIndex, runId, storableText(message), attempts, runId, chunkIndex, runId],
  );
  return row ?? null;
}
