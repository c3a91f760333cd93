/**
 * Whether a difference between two runs is real. Over the items both runs
 * scored (errors in either are left out and counted apart):
 *
 * - the mean paired difference of scores (head − base) with its confidence
 *   interval at 1 − alpha from the paired t distribution (n − 1 degrees of
 *   freedom), and the two-sided p-value of the paired t-test. When every
 *   difference is the same (sample SD 0), the t-test is undefined: a zero
 *   difference has p = 1, another one the exact sign test's p over the n
 *   items that all moved the same way;
 * - the exact McNemar test on pass/fail changes (a two-sided binomial test of
 *   the fail→pass against the pass→fail count, p = 1/2), with its p-value;
 * - the verdict: `better` or `worse` (by the sign of the mean difference)
 *   when the paired test's p-value is below alpha, else
 *   `no_significant_difference` (always so with fewer than 2 paired items).
 *
 * Distribution functions come from stdlib (@stdlib/stats-base-dists-*).
 */
import binomialCdf from '@stdlib/stats-base-dists-binomial-cdf';
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import type { CompareSummaryRow } from './compare.repository.ts';

export type Verdict = 'better' | 'worse' | 'no_significant_difference';

export interface CompareStatistics {
  alpha: number;
  paired_items: number;
  mean_base: number | null;
  mean_head: number | null;
  mean_delta: number | null;
  ci_low: number | null;
  ci_high: number | null;
  p_value: number | null;
  method: 'paired_t' | 'sign_test' | 'none';
  fail_to_pass: number;
  pass_to_fail: number;
  mcnemar_p_value: number;
  verdict: Verdict;
}

/** Two-sided exact binomial test of k successes in n trials at p = 1/2 (the sign test, McNemar's exact test). */
export function exactSignTest(k: number, n: number): number {
  if (n === 0) return 1;
  const low = Math.min(k, n - k);
  return Math.min(1, 2 * binomialCdf(low, n, 0.5));
}

const num = (v: number | string | null | undefined): number | null => (v === null || v === undefined ? null : Number(v));

export function compareStatistics(row: CompareSummaryRow | undefined, alpha: number): CompareStatistics {
  const n = row?.paired ?? 0;
  const d = num(row?.mean_delta);
  const sd = num(row?.sd_delta);
  const fail_to_pass = row?.fail_to_pass ?? 0;
  const pass_to_fail = row?.pass_to_fail ?? 0;
  const base = {
    alpha,
    paired_items: n,
    mean_base: num(row?.mean_base),
    mean_head: num(row?.mean_head),
    mean_delta: d,
    fail_to_pass,
    pass_to_fail,
    mcnemar_p_value: exactSignTest(fail_to_pass, fail_to_pass + pass_to_fail),
  };
  if (n < 2 || d === null || sd === null) {
    return { ...base, ci_low: null, ci_high: null, p_value: null, method: 'none', verdict: 'no_significant_difference' };
  }
  let ciLow: number;
  let ciHigh: number;
  let p: number;
  let method: CompareStatistics['method'];
  if (sd <= 1e-12) {
    ciLow = d;
    ciHigh = d;
    method = 'sign_test';
    p = Math.abs(d) <= 1e-12 ? 1 : exactSignTest(0, n);
  } else {
    const se = sd / Math.sqrt(n);
    const half = tQuantile(1 - alpha / 2, n - 1) * se;
    ciLow = d - half;
    ciHigh = d + half;
    method = 'paired_t';
    p = Math.min(1, 2 * (1 - tCdf(Math.abs(d) / se, n - 1)));
  }
  const verdict: Verdict = p < alpha ? (d > 0 ? 'better' : 'worse') : 'no_significant_difference';
  return { ...base, ci_low: ciLow, ci_high: ciHigh, p_value: p, method, verdict };
}
