/**
 * Repetitions: an item generated (or read) and scored n times has one
 * result, made here from its n outcomes. Its score is their mean, with their
 * sample standard deviation; it passes when at least `minPassed` of them
 * passed (all of them by default); it is an error as soon as one repetition
 * errors (a retry then tries it again, reusing the samples that were done).
 * Criteria are folded the same way: per criterion, the mean score, passed
 * when it passed in at least `minPassed` repetitions.
 */
import type { CriterionScore } from '../evaluators/criteria.ts';
import type { RepetitionOutcome } from './repetition-outcome.ts';

export type { RepetitionOutcome } from './repetition-outcome.ts';
import { truncate } from './chunk-steps.ts';
import type { ItemResult } from './run-lifecycle.ts';

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Sample standard deviation (n − 1); 0 for a single value. */
export function sampleSd(xs: readonly number[]): number {
  // equal scores have no spread, exactly (the mean of equal floats can differ from them in the last bit)
  if (xs.length < 2 || xs.every((x) => x === xs[0])) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** The item's one result from its repetitions' results (`reps[r]` is repetition r). */
export function combineRepetitions(itemId: string, reps: readonly ItemResult[], minPassed: number): ItemResult {
  const n = reps.length;
  const outcomes: RepetitionOutcome[] = reps.map((r, i) => ({
    repetition: i,
    status: r.status,
    score: r.score,
    passed: r.passed,
    reason: r.reason,
    error: r.error,
    ...(r.scores && { scores: [...r.scores] }),
  }));
  const usage = {
    attempts: reps.reduce((a, r) => a + (r.attempts ?? 0), 0),
    prompt_tokens: reps.reduce((a, r) => a + (r.prompt_tokens ?? 0), 0),
    completion_tokens: reps.reduce((a, r) => a + (r.completion_tokens ?? 0), 0),
    cost_usd: reps.some((r) => r.cost_usd !== null && r.cost_usd !== undefined) ? reps.reduce((a, r) => a + (r.cost_usd ?? 0), 0) : null,
  };
  const metered = reps.some((r) => r.attempts !== undefined);
  const latency_ms = reps.reduce((a, r) => a + r.latency_ms, 0);
  const scores = foldCriteria(reps, minPassed);
  const common = { item_id: itemId, latency_ms, repetitions: outcomes, ...(metered ? usage : {}), ...(scores && { scores }) };
  const errors = reps.map((r, i) => ({ r, i })).filter(({ r }) => r.status === 'error');
  if (errors.length > 0) {
    const { r, i } = errors[0]!;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more repetitions)` : '';
    return { ...common, status: 'error', score: null, passed: null, reason: null, error: truncate(`repetition ${i}: ${r.error ?? 'error'}${more}`), passed_repetitions: null, score_sd: null };
  }
  const values = reps.map((r) => r.score as number);
  const k = reps.filter((r) => r.passed).length;
  const passed = k >= minPassed;
  const score = mean(values);
  return {
    ...common,
    status: passed ? 'passed' : 'failed',
    score,
    passed,
    reason: `${k} of ${n} repetitions passed (${minPassed === n ? 'all' : `at least ${minPassed}`} must pass); mean score ${score.toFixed(3)}`,
    error: null,
    passed_repetitions: k,
    score_sd: sampleSd(values),
  };
}

/** Per criterion over the repetitions: an error if it errored in any; else the mean score, passed in at least minPassed. */
function foldCriteria(reps: readonly ItemResult[], minPassed: number): CriterionScore[] | undefined {
  const first = reps.find((r) => r.scores)?.scores;
  if (!first) return undefined;
  return first.map((c) => {
    const mine = reps.map((r) => r.scores?.find((x) => x.name === c.name));
    const bad = mine.findIndex((x) => !x || x.status === 'error');
    if (bad >= 0) {
      return { name: c.name, status: 'error', score: null, passed: null, reason: null, error: truncate(`repetition ${bad}: ${mine[bad]?.error ?? 'no outcome'}`) };
    }
    const k = mine.filter((x) => x!.passed).length;
    const passed = k >= minPassed;
    return { name: c.name, status: passed ? 'passed' : 'failed', score: mean(mine.map((x) => x!.score as number)), passed, reason: `${k} of ${reps.length} repetitions passed`, error: null };
  });
}
