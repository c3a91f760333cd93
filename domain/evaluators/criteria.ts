/**
 * Several criteria on one item: each criterion's outcome, and the item's
 * verdict from them. The item's score is the weighted mean of its criteria's
 * scores; it passes by the pass policy (all, any, at least k); it is an error
 * as soon as one criterion errors (the others' outcomes are still kept, and
 * counted per criterion).
 */
import type { PassPolicy } from './evaluator.schema.ts';

/** One criterion's outcome on one item, as stored in the result's `scores`. */
export interface CriterionScore {
  name: string;
  status: 'passed' | 'failed' | 'error';
  score: number | null;
  passed: boolean | null;
  reason: string | null;
  error: string | null;
}

export interface CriteriaVerdict {
  status: 'passed' | 'failed' | 'error';
  score: number | null;
  passed: boolean | null;
  reason: string | null;
  error: string | null;
}

export function policyText(pass: PassPolicy): string {
  return typeof pass === 'object' ? `at least ${pass.min_passed} must pass` : pass === 'all' ? 'all must pass' : 'any may pass';
}

/** The item's verdict from its criteria's outcomes (`weights[i]` belongs to `scores[i]`). */
export function combineCriteria(scores: readonly CriterionScore[], weights: readonly number[], pass: PassPolicy): CriteriaVerdict {
  const errors = scores.filter((s) => s.status === 'error');
  if (errors.length > 0) {
    const first = errors[0]!;
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more criteria)` : '';
    return { status: 'error', score: null, passed: null, reason: null, error: `criterion ${first.name}: ${first.error ?? 'error'}${more}` };
  }
  let sum = 0;
  let weightSum = 0;
  scores.forEach((s, i) => {
    const w = weights[i] ?? 1;
    sum += w * (s.score as number);
    weightSum += w;
  });
  const score = weightSum > 0 ? Math.min(1, Math.max(0, sum / weightSum)) : 0;
  const passedCount = scores.filter((s) => s.passed).length;
  const passed =
    typeof pass === 'object' ? passedCount >= pass.min_passed : pass === 'all' ? passedCount === scores.length : passedCount > 0;
  const failedNames = scores.filter((s) => !s.passed).map((s) => s.name);
  const reason = `${passedCount} of ${scores.length} criteria passed (${policyText(pass)})${failedNames.length ? `; failed: ${failedNames.join(', ')}` : ''}`;
  return { status: passed ? 'passed' : 'failed', score, passed, reason, error: null };
}
