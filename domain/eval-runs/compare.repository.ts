/**
 * The compare's SQL: a pair of runs' summary (computed once per pair of
 * finished runs and kept in eval_run_comparisons) and their items side by
 * side, a keyset page at a time.
 *
 * - The summary joins both runs' results (a hash join of 1 M × 1 M rows,
 *   about a second of CPU, BENCHMARKS.md), so it is computed once per pair of
 *   finished runs and kept with both runs' versions (version() below). A read
 *   whose runs are no longer at those versions (a retry, a result landing
 *   after a cancel, a re-open) recomputes it; while either run is active it
 *   is computed on every read and not kept. Concurrent first reads of a pair
 *   queue on a transaction-level advisory lock, and the later ones find the
 *   first's row.
 * - A page is bounded on both sides by the cursor (`b.item_id > ?` and
 *   `h.item_id > ?`), so the merge join of the two primary-key range scans
 *   starts at the cursor on both: a page reads about `limit` rows of each run
 *   whatever its depth.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { FINISHED_RUN_STATUSES, type ItemStatus } from '../../entities/index.ts';
import { sql, sqlList } from '../shared/sql.ts';

export interface CompareRow {
  item_id: string;
  base_status: ItemStatus;
  head_status: ItemStatus;
  base_score: number | null;
  head_score: number | null;
}

export interface CompareSummaryRow {
  improved: number;
  regressed: number;
  unchanged: number;
  not_comparable: number;
  both: number;
  /** over the items scored (not error) in both runs: their count, the mean scores, and the paired differences' mean and sample SD */
  paired: number;
  mean_base: number | null;
  mean_head: number | null;
  mean_delta: number | null;
  sd_delta: number | null;
  /** pass/fail changes among them */
  fail_to_pass: number;
  pass_to_fail: number;
}

/** A pair's summary as kept: the compare's counts, and what the gate needs besides (passed in base, error in head). */
export interface PairSummary extends CompareSummaryRow {
  pass_to_error: number;
  /** the same per criterion both runs have, when it was asked for (compare-criteria.ts) */
  criteria?: (CompareSummaryRow & { name: string })[];
}

const FINISHED = sqlList(FINISHED_RUN_STATUSES);
/** The kept summary's shape: bump it when PairSummary changes, so that rows kept in the old shape are computed again. */
const SUMMARY_FORMAT = 2;

/**
 * A run's version (of the eval_runs row `r`): what every statement that
 * changes its results also changes in the same statement (its counters and
 * updated_at: recordResults, giving up a chunk and a retry's re-open all set
 * updated_at = now()), plus its status and ending. Two different sets of
 * results of one run never have the same version; a statement that changed a
 * run's results without moving updated_at would break the kept summaries.
 * Prefixed with SUMMARY_FORMAT.
 */
const version = (r: string) => `concat_ws(':', ${SUMMARY_FORMAT}, ${r}.status, ${r}.completed_count, ${r}.passed_count, ${r}.failed_count, ${r}.error_count, ${r}.score_sum,
                  (extract(epoch from ${r}.updated_at) * 1000000)::bigint, (extract(epoch from ${r}.completed_at) * 1000000)::bigint)`;

/**
 * The counts over pairs with base and head statuses `bs`, `hs`, scores `bsc`,
 * `hsc`, `ne` (both scored) and `d` (head − base when both are scored, else
 * null): for the runs' results and, per criterion, for their outcomes.
 */
const PAIR_COUNTS = `count(*) filter (where d > 1e-9)::int as improved,
        count(*) filter (where d < -1e-9)::int as regressed,
        count(*) filter (where abs(d) <= 1e-9)::int as unchanged,
        count(*) filter (where not ne)::int as not_comparable,
        count(*)::int as both,
        count(*) filter (where ne)::int as paired,
        avg(bsc) filter (where ne) as mean_base,
        avg(hsc) filter (where ne) as mean_head,
        avg(d) as mean_delta,
        stddev_samp(d) as sd_delta,
        count(*) filter (where bs = 'failed' and hs = 'passed')::int as fail_to_pass,
        count(*) filter (where bs = 'passed' and hs = 'failed')::int as pass_to_fail,
        count(*) filter (where bs = 'passed' and hs = 'error')::int as pass_to_error`;

/** The pair columns PAIR_COUNTS reads, from the base and head status and score expressions given. */
const pairColumns = (bs: string, bsc: string, hs: string, hsc: string) =>
  `${bs} as bs, ${hs} as hs, ${bsc} as bsc, ${hsc} as hsc, ${bs} <> 'error' and ${hs} <> 'error' as ne,
   case when ${bs} <> 'error' and ${hs} <> 'error' then ${hsc} - ${bsc} end as d`;

/**
 * The summary's statement: both runs' versions when finished (null otherwise;
 * read in the statement's snapshot, so they are the versions of the results
 * it counts) and the counts over the pairs. `d`, the paired difference, is
 * null unless both are scored (the same rule as compareItem).
 */
const SUMMARY_SQL = `select (select ${version('r')} from eval_runs r where r.id = ? and r.tenant_id = ? and r.status in (${FINISHED})) as base_version,
        (select ${version('r')} from eval_runs r where r.id = ? and r.tenant_id = ? and r.status in (${FINISHED})) as head_version,
        ${PAIR_COUNTS}
   from (select ${pairColumns('b.status', 'b.score', 'h.status', 'h.score')}
           from eval_run_items b join eval_run_items h on h.run_id = ? and h.item_id = b.item_id
          where b.run_id = ?) x`;

/** The summary's statement and its parameters (the bench explains it). */
export function pairSummaryStatement(tenantId: string, baseId: string, headId: string): { text: string; params: unknown[] } {
  return { text: SUMMARY_SQL, params: [baseId, tenantId, headId, tenantId, headId, baseId] };
}

/** The kept summary of the pair, if both runs of the tenant are still at the versions it was computed at. */
export async function keptPairSummary(em: EntityManager, tenantId: string, baseId: string, headId: string): Promise<PairSummary | undefined> {
  const [row] = await sql<{ summary: PairSummary }>(
    em,
    `select c.summary
       from eval_run_comparisons c
       join eval_runs b on b.id = c.base_run_id and b.tenant_id = c.tenant_id
       join eval_runs h on h.id = c.head_run_id and h.tenant_id = c.tenant_id
      where c.base_run_id = ? and c.head_run_id = ? and c.tenant_id = ?
        and c.base_version = ${version('b')} and c.head_version = ${version('h')}`,
    [baseId, headId, tenantId],
  );
  return row?.summary;
}

/** Computes the pair's summary over both runs' results now, with both runs' versions when both are finished (null otherwise: not to be kept). */
export async function computePairSummary(
  em: EntityManager,
  tenantId: string,
  baseId: string,
  headId: string,
): Promise<{ summary: PairSummary; base_version: string | null; head_version: string | null }> {
  const { text, params } = pairSummaryStatement(tenantId, baseId, headId);
  const [row] = await sql<PairSummary & { base_version: string | null; head_version: string | null }>(em, text, params);
  const { base_version, head_version, ...summary } = row as PairSummary & { base_version: string | null; head_version: string | null };
  return { summary, base_version, head_version };
}

/**
 * The pair's summary: the kept one while both runs are where it was computed,
 * else computed now, and kept when both runs are finished. The caller has
 * checked that both runs are the tenant's.
 */
export async function pairSummary(em: EntityManager, tenantId: string, baseId: string, headId: string, withCriteria = false): Promise<PairSummary> {
  // a summary kept without the per-criterion part (the gate's) is computed again, with it, when a compare asks for it
  const usable = (k: PairSummary | undefined) => (k && (!withCriteria || k.criteria) ? k : undefined);
  const kept = usable(await keptPairSummary(em, tenantId, baseId, headId));
  if (kept) return kept;
  return em.transactional(async (tx) => {
    // one computation per pair at a time: the others wait here and find its row
    await sql(tx, `select pg_advisory_xact_lock(hashtextextended('eval_run_comparisons:' || ? || ':' || ?, 0))`, [baseId, headId]);
    const again = usable(await keptPairSummary(tx, tenantId, baseId, headId));
    if (again) return again;
    const computed = await computePairSummary(tx, tenantId, baseId, headId);
    const { base_version, head_version } = computed;
    const summary: PairSummary = withCriteria ? { ...computed.summary, criteria: await criteriaSummaries(tx, baseId, headId) } : computed.summary;
    if (base_version !== null && head_version !== null) {
      await sql(
        tx,
        // kept only while both runs exist (a run deleted since the summary was computed: nothing kept, no foreign key error)
        `insert into eval_run_comparisons (base_run_id, head_run_id, tenant_id, base_version, head_version, summary, computed_at)
         select ?, ?, ?, ?, ?, ?::jsonb, now()
          where exists (select 1 from eval_runs where id = ? for key share) and exists (select 1 from eval_runs where id = ? for key share)
         on conflict (base_run_id, head_run_id) do update
           set base_version = excluded.base_version, head_version = excluded.head_version, summary = excluded.summary, computed_at = excluded.computed_at
         where eval_run_comparisons.tenant_id = excluded.tenant_id`,
        [baseId, headId, tenantId, base_version, head_version, JSON.stringify(summary), baseId, headId],
      );
    }
    return summary;
  });
}

/**
 * The items both runs scored, side by side, in item order (one more than
 * `limit`), after `after` on both sides: the merge join's two primary-key
 * range scans start at the cursor, so a page reads O(limit) rows at any depth.
 */
export function compareRowsStatement(baseId: string, headId: string, after: string | undefined, limit: number): { text: string; params: unknown[] } {
  return {
    text: `select b.item_id, b.status as base_status, h.status as head_status, b.score as base_score, h.score as head_score
       from eval_run_items b join eval_run_items h on h.run_id = ? and h.item_id = b.item_id
      where b.run_id = ? ${after ? 'and b.item_id > ? and h.item_id > ?' : ''}
      order by b.item_id limit ?`,
    params: after ? [headId, baseId, after, after, limit + 1] : [headId, baseId, limit + 1],
  };
}

export async function compareRows(em: EntityManager, baseId: string, headId: string, after: string | undefined, limit: number): Promise<CompareRow[]> {
  const { text, params } = compareRowsStatement(baseId, headId, after, limit);
  return sql<CompareRow>(em, text, params);
}

/**
 * Per criterion both runs have (by name, in the base run's order), the same counts as the
 * summary over the items both runs recorded; a side without the criterion's outcome is its error.
 */
export async function criteriaSummaries(em: EntityManager, baseId: string, headId: string): Promise<(CompareSummaryRow & { name: string })[]> {
  return sql<CompareSummaryRow & { name: string }>(
    em,
    `with names as (
       select bn.c->>'name' as name, bn.ord
         from eval_runs rb cross join lateral jsonb_array_elements(coalesce(rb.criteria_stats, '[]'::jsonb)) with ordinality bn(c, ord)
        where rb.id = ?
          and exists (select 1 from eval_runs rh cross join lateral jsonb_array_elements(coalesce(rh.criteria_stats, '[]'::jsonb)) hn(c)
                       where rh.id = ? and hn.c->>'name' = bn.c->>'name')
     ), pairs as (
       select n.name, n.ord, ${pairColumns("coalesce(bo.st, 'error')", 'bo.sc', "coalesce(ho.st, 'error')", 'ho.sc')}
         from eval_run_items b
         join eval_run_items h on h.run_id = ? and h.item_id = b.item_id
        cross join names n
         left join lateral (select x->>'status' as st, (x->>'score')::float8 as sc
                              from jsonb_array_elements(case when jsonb_typeof(b.scores) = 'array' then b.scores else '[]'::jsonb end) x
                             where x->>'name' = n.name limit 1) bo on true
         left join lateral (select x->>'status' as st, (x->>'score')::float8 as sc
                              from jsonb_array_elements(case when jsonb_typeof(h.scores) = 'array' then h.scores else '[]'::jsonb end) x
                             where x->>'name' = n.name limit 1) ho on true
        where b.run_id = ?
     )
     select name,
        ${PAIR_COUNTS}
       from pairs
      group by name, ord
      order by ord`,
    [baseId, headId, headId, baseId],
  );
}

