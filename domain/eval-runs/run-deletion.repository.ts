/**
 * The SQL of deleting runs and datasets (issue #16), each statement sent
 * through sql(). A run (or dataset) is deleted in two steps:
 *
 * 1. Its own row goes at once, in one short statement; the statement-level
 *    trigger on eval_runs (datasets) writes a `deletions` row for it in the
 *    same statement (migration Migration20261204220000RunDeletions). From
 *    that commit on the run is gone for every read, and nothing can add a
 *    result, sample or chunk to it: recordResults and failChunk lock the run
 *    FOR KEY SHARE and insert only while it is running, claimAttempts only
 *    while it exists, chunks are inserted by the start holding it FOR UPDATE.
 * 2. What hung off it is deleted in the background a bounded batch at a time
 *    (deleteBatch: one autocommit statement of at most `limit` rows, far
 *    from the statement timeout whatever the run's size), and the `deletions`
 *    row last, once nothing of it is left: a crash anywhere in between leaves
 *    the row, and the next purge goes on from there.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { ACTIVE_RUN_STATUSES, FINISHED_RUN_STATUSES } from '../../entities/index.ts';
import { sql, sqlList } from '../shared/sql.ts';

const ACTIVE = sqlList(ACTIVE_RUN_STATUSES);
const FINISHED = sqlList(FINISHED_RUN_STATUSES);

export type DeletionKind = 'run' | 'dataset';

export interface DeletionRow {
  kind: DeletionKind;
  id: string;
}

/** Where a run's (a dataset's) rows are, and the key a batch walks in order. */
export type PurgeTarget = 'eval_run_items' | 'eval_run_samples' | 'eval_run_chunks' | 'dataset_items';

export const PURGE_ORDER: Record<DeletionKind, readonly PurgeTarget[]> = {
  run: ['eval_run_items', 'eval_run_samples', 'eval_run_chunks'],
  dataset: ['dataset_items'],
};

/** A keyset position inside one run's (dataset's) rows of a table; null: from the first. */
export type PurgeCursor = string | null;

const MIN_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * One batch statement per table: deletes the next `limit` rows (in key order,
 * after the cursor) of the run or dataset `id`, and answers how many and the
 * cursor after them. Keyset, so a batch never walks the dead index entries of
 * the batches before it; the rows are named to the delete as an array
 * (`= any (array(…))`: an index probe per row; a join there is planned as a
 * hash join over a sequential scan of the whole table once it is large).
 */
const BATCH_SQL: Record<PurgeTarget, string> = {
  eval_run_items: `with b as materialized (
       select item_id from eval_run_items where run_id = ? and item_id > ?::uuid order by item_id limit ?
     ), d as (
       delete from eval_run_items where run_id = ? and item_id = any (array(select item_id from b)) returning 1
     )
     select (select count(*)::int from d) as n, (select count(*)::int from b) as seen, (select item_id::text from b order by item_id desc limit 1) as last`,
  // (item_id, repetition) is the key: the cursor is "item_id/repetition", the rows are named by ctid (a TID scan)
  eval_run_samples: `with b as materialized (
       select ctid as t, item_id, repetition from eval_run_samples
        where run_id = ? and (item_id, repetition) > (split_part(?, '/', 1)::uuid, coalesce(nullif(split_part(?, '/', 2), ''), '-1')::int)
        order by item_id, repetition limit ?
     ), d as (
       delete from eval_run_samples where ctid = any (array(select t from b)) and run_id = ? returning 1
     )
     select (select count(*)::int from d) as n, (select count(*)::int from b) as seen,
            (select item_id::text || '/' || repetition from b order by item_id desc, repetition desc limit 1) as last`,
  eval_run_chunks: `with b as materialized (
       select chunk_index from eval_run_chunks where run_id = ? and chunk_index > ?::int order by chunk_index limit ?
     ), d as (
       delete from eval_run_chunks where run_id = ? and chunk_index = any (array(select chunk_index from b)) returning 1
     )
     select (select count(*)::int from d) as n, (select count(*)::int from b) as seen, (select max(chunk_index)::text from b) as last`,
  // served by dataset_items_keyset_idx (dataset_id, id, …)
  dataset_items: `with b as materialized (
       select id from dataset_items where dataset_id = ? and id > ?::uuid order by id limit ?
     ), d as (
       delete from dataset_items where id = any (array(select id from b)) and dataset_id = ? returning 1
     )
     select (select count(*)::int from d) as n, (select count(*)::int from b) as seen, (select id::text from b order by id desc limit 1) as last`,
};

function batchParams(target: PurgeTarget, id: string, after: PurgeCursor, limit: number): unknown[] {
  switch (target) {
    case 'eval_run_items':
    case 'dataset_items':
      return [id, after ?? MIN_UUID, limit, id];
    case 'eval_run_samples': {
      const cursor = after ?? `${MIN_UUID}/`;
      return [id, cursor, cursor, limit, id];
    }
    case 'eval_run_chunks':
      return [id, after ?? '-1', limit, id];
  }
}

/**
 * Deletes the next batch of at most `limit` rows: `n` deleted of the `seen` it found after the cursor
 * (fewer when a concurrent purge took some); `seen` < `limit` means the table holds no more of them after it.
 */
export async function deleteBatch(
  em: EntityManager,
  target: PurgeTarget,
  id: string,
  after: PurgeCursor,
  limit: number,
): Promise<{ n: number; seen: number; last: PurgeCursor }> {
  const [row] = await sql<{ n: number; seen: number; last: string | null }>(em, BATCH_SQL[target], batchParams(target, id, after, limit));
  return { n: row?.n ?? 0, seen: row?.seen ?? 0, last: row?.last ?? after };
}

const LEFT_SQL: Record<PurgeTarget, string> = {
  eval_run_items: 'select exists (select 1 from eval_run_items where run_id = ?) as remaining',
  eval_run_samples: 'select exists (select 1 from eval_run_samples where run_id = ?) as remaining',
  eval_run_chunks: 'select exists (select 1 from eval_run_chunks where run_id = ?) as remaining',
  dataset_items: 'select exists (select 1 from dataset_items where dataset_id = ?) as remaining',
};

/** Whether any row of the run (dataset) is left in the table (the check before its deletion is done). */
export async function rowsLeft(em: EntityManager, target: PurgeTarget, id: string): Promise<boolean> {
  const [row] = await sql<{ remaining: boolean }>(em, LEFT_SQL[target], [id]);
  return row?.remaining ?? false;
}

/** The oldest deletions still to do, `limit` of them. */
export async function pendingDeletions(em: EntityManager, limit: number): Promise<DeletionRow[]> {
  return sql<DeletionRow>(em, 'select kind, id from deletions order by created_at, kind, id limit ?', [limit]);
}

/** Deletions not finished yet, by kind (the metrics gauge). */
export async function countDeletions(em: EntityManager): Promise<{ kind: DeletionKind; n: number }[]> {
  return sql<{ kind: DeletionKind; n: number }>(em, 'select kind, count(*)::int as n from deletions group by kind');
}

/** The deletion is done: nothing of the run (dataset) is left. */
export async function finishDeletion(em: EntityManager, d: DeletionRow): Promise<void> {
  await sql(em, 'delete from deletions where kind = ? and id = ?', [d.kind, d.id]);
}

/** Whether the tenant's run (dataset) is being deleted. */
export async function isBeingDeleted(em: EntityManager, kind: DeletionKind, tenantId: string, id: string): Promise<boolean> {
  const [row] = await sql<{ found: boolean }>(em, 'select exists (select 1 from deletions where kind = ? and id = ? and tenant_id = ?) as found', [kind, id, tenantId]);
  return row?.found ?? false;
}

/**
 * Deletes the tenant's run if it has ended and no active run re-scores its
 * samples; the trigger marks it for the background deletion in the same
 * statement. A chunk recording results holds the run FOR KEY SHARE, so this
 * waits for that statement's commit (and its results are then deleted with
 * the rest). Undefined when nothing was deleted: the caller says why.
 */
export async function deleteFinishedRun(em: EntityManager, tenantId: string, runId: string): Promise<{ id: string } | undefined> {
  const [row] = await sql<{ id: string }>(
    em,
    `delete from eval_runs r
      where r.id = ? and r.tenant_id = ? and r.status in (${FINISHED})
        and not exists (select 1 from eval_runs x where x.tenant_id = r.tenant_id and x.status in (${ACTIVE}) and x.outputs_from_run_id = r.id)
      returning r.id`,
    [runId, tenantId],
  );
  return row;
}

/** The tenant's run's status and whether an active run re-scores it (to say why it was not deleted). */
export async function runDeletionBlocker(em: EntityManager, tenantId: string, runId: string): Promise<{ status: string; rescored_by: string | null } | undefined> {
  const [row] = await sql<{ status: string; rescored_by: string | null }>(
    em,
    `select r.status,
            (select x.id from eval_runs x where x.tenant_id = r.tenant_id and x.status in (${ACTIVE}) and x.outputs_from_run_id = r.id limit 1) as rescored_by
       from eval_runs r where r.id = ? and r.tenant_id = ?`,
    [runId, tenantId],
  );
  return row;
}

/**
 * Retention: deletes up to `limit` runs that ended (completed_at) more than
 * `days` days ago, oldest first, skipping those an active run re-scores and
 * those locked right now (a retry, a dataset delete: the next sweep sees
 * them). Served by the partial index eval_runs_finished_idx. Returns their ids.
 */
export async function deleteExpiredRuns(em: EntityManager, days: number, limit: number): Promise<string[]> {
  const rows = await sql<{ id: string }>(
    em,
    `with old as (
       select r.id from eval_runs r
        where r.status in (${FINISHED}) and r.completed_at < now() - make_interval(days => ?)
          and not exists (select 1 from eval_runs x where x.tenant_id = r.tenant_id and x.status in (${ACTIVE}) and x.outputs_from_run_id = r.id)
        order by r.completed_at limit ?
        for update of r skip locked
     )
     delete from eval_runs r using old where r.id = old.id and r.status in (${FINISHED})
     returning r.id`,
    [days, limit],
  );
  return rows.map((r) => r.id);
}
