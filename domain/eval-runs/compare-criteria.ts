/**
 * A comparison per criterion: for every criterion both runs scored (by name,
 * in the base run's order), the same counts and paired statistics as the
 * run-level comparison (compare-stats.ts), over the items both runs
 * recorded. An item without that criterion's outcome on a side (its
 * generation failed, its chunk was given up) counts as that criterion's
 * error there, so it is `not_comparable`, as an error item is for the run.
 * The statement is compare.repository.ts' criteriaSummaries.
 */
import { compareStatistics, type CompareStatistics } from './compare-stats.ts';
import type { CompareSummaryRow } from './compare.repository.ts';

export interface CriterionComparison {
  name: string;
  summary: { improved: number; regressed: number; unchanged: number; not_comparable: number };
  statistics: CompareStatistics;
}

/** The per-criterion comparisons at `alpha`. */
export function criteriaComparisons(rows: readonly (CompareSummaryRow & { name: string })[], alpha: number): CriterionComparison[] {
  return rows.map((r) => ({
    name: r.name,
    summary: { improved: r.improved, regressed: r.regressed, unchanged: r.unchanged, not_comparable: r.not_comparable },
    statistics: compareStatistics(r, alpha),
  }));
}
