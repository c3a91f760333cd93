/**
 * The compare's statistics against values computed independently (R:
 * t.test(paired = TRUE), binom.test), and the verdict's rules at the edges.
 */
import { describe, expect, it } from 'vitest';
import { compareStatistics, exactSignTest } from '../../domain/eval-runs/compare-stats.ts';
import type { CompareSummaryRow } from '../../domain/eval-runs/compare.repository.ts';

/** A summary row over these paired differences. */
function rowOf(deltas: number[], changes: { fail_to_pass?: number; pass_to_fail?: number } = {}): CompareSummaryRow {
  const n = deltas.length;
  const mean = deltas.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(deltas.reduce((a, d) => a + (d - mean) ** 2, 0) / (n - 1)) : null;
  return {
    improved: deltas.filter((d) => d > 0).length,
    regressed: deltas.filter((d) => d < 0).length,
    unchanged: deltas.filter((d) => d === 0).length,
    not_comparable: 0,
    both: n,
    paired: n,
    mean_base: 0.5,
    mean_head: 0.5 + mean,
    mean_delta: mean,
    sd_delta: sd,
    fail_to_pass: changes.fail_to_pass ?? 0,
    pass_to_fail: changes.pass_to_fail ?? 0,
  };
}

describe('compare statistics', () => {
  it('paired t: deltas 1..5 give t = 4.2426 on 4 df, p = 0.01324, 95 % CI [1.0368, 4.9632]', () => {
    const s = compareStatistics(rowOf([1, 2, 3, 4, 5]), 0.05);
    expect(s.method).toBe('paired_t');
    expect(s.mean_delta).toBe(3);
    expect(s.p_value).toBeCloseTo(0.01324, 5);
    expect(s.ci_low).toBeCloseTo(1.03676, 4);
    expect(s.ci_high).toBeCloseTo(4.96324, 4);
    expect(s.verdict).toBe('better');
    // at alpha 0.01 the same data is not significant, and the interval (99 %) is wider
    const strict = compareStatistics(rowOf([1, 2, 3, 4, 5]), 0.01);
    expect(strict.verdict).toBe('no_significant_difference');
    expect(strict.ci_low!).toBeLessThan(s.ci_low!);
  });

  it('exact McNemar: 1 pass→fail against 9 fail→pass is p = 22/1024; the sign test is symmetric', () => {
    expect(exactSignTest(9, 10)).toBeCloseTo(22 / 1024, 12);
    expect(exactSignTest(1, 10)).toBeCloseTo(22 / 1024, 12);
    expect(exactSignTest(5, 10)).toBe(1);
    expect(exactSignTest(0, 0)).toBe(1);
    const s = compareStatistics(rowOf([0.1, -0.1, 0.2], { fail_to_pass: 9, pass_to_fail: 1 }), 0.05);
    expect(s.mcnemar_p_value).toBeCloseTo(22 / 1024, 12);
  });

  it('two changed items out of 200 are no evidence; a consistent shift is', () => {
    const noise = compareStatistics(rowOf([...Array(198).fill(0), 1, -1]), 0.05);
    expect(noise.verdict).toBe('no_significant_difference');
    expect(noise.p_value).toBe(1);
    const shift = compareStatistics(rowOf([...Array(140).fill(0), ...Array(60).fill(1)]), 0.05);
    expect(shift.verdict).toBe('better');
    expect(shift.p_value!).toBeLessThan(1e-10);
    const drop = compareStatistics(rowOf([...Array(140).fill(0), ...Array(60).fill(-1)]), 0.05);
    expect(drop.verdict).toBe('worse');
    expect(drop.ci_high!).toBeLessThan(0);
  });

  it('equal differences (SD 0) fall back to the exact sign test; fewer than 2 items decide nothing', () => {
    const all = compareStatistics(rowOf([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]), 0.05);
    expect(all).toMatchObject({ method: 'sign_test', ci_low: 0.5, ci_high: 0.5, verdict: 'better' });
    expect(all.p_value).toBeCloseTo(2 / 64, 12);
    const few = compareStatistics(rowOf([0.5, 0.5, 0.5, 0.5, 0.5]), 0.05);
    expect(few.verdict).toBe('no_significant_difference'); // 2 / 32 = 0.0625
    const same = compareStatistics(rowOf([0, 0, 0]), 0.05);
    expect(same).toMatchObject({ p_value: 1, verdict: 'no_significant_difference' });
    expect(compareStatistics(rowOf([1]), 0.05)).toMatchObject({ method: 'none', p_value: null, ci_low: null, verdict: 'no_significant_difference' });
    expect(compareStatistics(undefined, 0.05)).toMatchObject({ paired_items: 0, verdict: 'no_significant_difference' });
  });
});
