/**
 * A comparison per criterion: for every criterion both runs scored (by name,
 * in the base run's order), the same counts and paired statistics as the
 * run-level comparison (compare-stats.ts), over the items both runs
 * recorded. An item without that criterion's outcome on a side (its
 * generation failed, its chunk was given up) counts as that criterion's
 * error there, so it is `not_comparable`, as an error item is for the run.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from '../shared/sql.ts';
import { compareStatistics, type CompareStatistics } from './compare-stats.ts';
import type { CompareSummaryRow } from './eval-run.repository.ts';

export interface CriterionComparison {
  name: string;
  summary: { improved: number; regressed: number; unchanged: number; not_comparable: number };
  statistics: CompareStatistics;
}

/** One statement: per common criterion, the summary row compareStatistics reads. */
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
       select n.name, n.ord,
              coalesce(bo.st, 'error') as bst, bo.sc as bsc, coalesce(ho.st, 'error') as hst, ho.sc as hsc
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
            count(*) filter (where bst <> 'error' and hst <> 'error' and hsc > bsc + 1e-9)::int as improved,
            count(*) filter (where bst <> 'error' and hst <> 'error' and hsc < bsc - 1e-9)::int as regressed,
            count(*) filter (where bst <> 'error' and hst <> 'error' and abs(hsc - bsc) <= 1e-9)::int as unchanged,
            count(*) filter (where bst = 'error' or hst = 'error')::int as not_comparable,
            count(*)::int as both,
            count(*) filter (where bst <> 'error' and hst <> 'error')::int as paired,
            avg(bsc) filter (where bst <> 'error' and hst <> 'error') as mean_base,
            avg(hsc) filter (where bst <> 'error' and hst <> 'error') as mean_head,
            avg(hsc - bsc) filter (where bst <> 'error' and hst <> 'error') as mean_delta,
            stddev_samp(hsc - bsc) filter (where bst <> 'error' and hst <> 'error') as sd_delta,
            count(*) filter (where bst = 'failed' and hst = 'passed')::int as fail_to_pass,
            count(*) filter (where bst = 'passed' and hst = 'failed')::int as pass_to_fail
       from pairs
      group by name, ord
      order by ord`,
    [baseId, headId, headId, baseId],
  );
}

/** The per-criterion comparisons at `alpha`. */
export function criteriaComparisons(rows: readonly (CompareSummaryRow & { name: string })[], alpha: number): CriterionComparison[] {
  return rows.map((r) => ({
    name: r.name,
    summary: { improved: r.improved, regressed: r.regressed, unchanged: r.unchanged, not_comparable: r.not_comparable },
    statistics: compareStatistics(r, alpha),
  }));
}
