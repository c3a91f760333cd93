/**
 * Folding an item's repetitions into its one result, against values worked
 * out by hand: the mean, the sample standard deviation (n − 1), k of n and the
 * pass policy, errors, and criteria folded per criterion.
 */
import { describe, expect, it } from 'vitest';
import { combineRepetitions, sampleSd } from '../../domain/eval-runs/repetitions.ts';
import type { ItemResult } from '../../domain/eval-runs/run-lifecycle.ts';

const rep = (score: number | null, passed: boolean | null, extra: Partial<ItemResult> = {}): ItemResult => ({
  item_id: 'i',
  status: score === null ? 'error' : passed ? 'passed' : 'failed',
  score,
  passed,
  reason: score === null ? null : 'r',
  error: score === null ? 'boom' : null,
  latency_ms: 1,
  ...extra,
});

describe('sampleSd', () => {
  it('is the n − 1 standard deviation, 0 for equal values and for one value', () => {
    // 0.2, 0.4, 0.9: mean 0.5, squared deviations 0.09 + 0.01 + 0.16 = 0.26, / 2 = 0.13
    expect(sampleSd([0.2, 0.4, 0.9])).toBeCloseTo(Math.sqrt(0.13), 15);
    expect(sampleSd([0.7, 0.7, 0.7])).toBe(0);
    expect(sampleSd([0.3])).toBe(0);
  });
});

describe('combineRepetitions', () => {
  it('means the scores, counts k of n and follows min_passed', () => {
    const reps = [rep(1, true), rep(0.2, false), rep(1, true)];
    const all = combineRepetitions('i', reps, 3);
    expect(all).toMatchObject({ status: 'failed', passed: false, passed_repetitions: 2, error: null });
    expect(all.score).toBeCloseTo(2.2 / 3, 15);
    // deviations from 0.7333…: 0.2667, −0.5333, 0.2667 → (0.0711 + 0.2844 + 0.0711) / 2 = 0.21333…
    expect(all.score_sd).toBeCloseTo(Math.sqrt(0.64 / 3), 12);
    expect(all.reason).toBe('2 of 3 repetitions passed (all must pass); mean score 0.733');
    expect(combineRepetitions('i', reps, 2)).toMatchObject({ status: 'passed', passed: true });
    expect(all.repetitions?.map((r) => [r.repetition, r.status])).toEqual([[0, 'passed'], [1, 'failed'], [2, 'passed']]);
  });

  it('is an error when a repetition errors, naming it; all errors too', () => {
    const one = combineRepetitions('i', [rep(1, true), rep(null, null)], 1);
    expect(one).toMatchObject({ status: 'error', score: null, passed: null, passed_repetitions: null, score_sd: null, error: 'repetition 1: boom' });
    const both = combineRepetitions('i', [rep(null, null), rep(null, null)], 1);
    expect(both.error).toBe('repetition 0: boom (and 1 more repetitions)');
  });

  it('adds up usage only when the repetitions were metered', () => {
    const metered = combineRepetitions('i', [rep(1, true, { attempts: 1, prompt_tokens: 10, completion_tokens: 2, cost_usd: 0.5 }), rep(1, true, { attempts: 2, prompt_tokens: 5, completion_tokens: 1, cost_usd: null })], 2);
    expect(metered).toMatchObject({ attempts: 3, prompt_tokens: 15, completion_tokens: 3, cost_usd: 0.5 });
    expect(combineRepetitions('i', [rep(1, true), rep(1, true)], 2)).not.toHaveProperty('attempts');
  });

  it('folds criteria per criterion: mean score, passed in at least min_passed, an error if any repetition errored it', () => {
    const c = (a: [number | null, boolean | null], b: [number | null, boolean | null]) => [
      { name: 'a', status: a[0] === null ? 'error' : a[1] ? 'passed' : 'failed', score: a[0], passed: a[1], reason: null, error: a[0] === null ? 'x' : null },
      { name: 'b', status: b[1] ? 'passed' : 'failed', score: b[0], passed: b[1], reason: null, error: null },
    ] as const;
    const r = combineRepetitions('i', [rep(1, true, { scores: [...c([1, true], [0, false])] }), rep(0.5, true, { scores: [...c([0, false], [1, true])] })], 1);
    expect(r.scores).toEqual([
      { name: 'a', status: 'passed', score: 0.5, passed: true, reason: '1 of 2 repetitions passed', error: null },
      { name: 'b', status: 'passed', score: 0.5, passed: true, reason: '1 of 2 repetitions passed', error: null },
    ]);
    const e = combineRepetitions('i', [rep(1, true, { scores: [...c([null, null], [1, true])] }), rep(1, true, { scores: [...c([1, true], [1, true])] })], 2);
    expect(e.scores?.[0]).toMatchObject({ name: 'a', status: 'error', error: 'repetition 0: x' });
  });
});
