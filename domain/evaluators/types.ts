/** One dataset item as the eval-run worker hands it over (fields come from Postgres jsonb: any JSON value). */
export interface EvalItem {
  input: unknown;
  output: unknown;
  expected_output: unknown;
  metadata: unknown;
}

export interface EvalResult {
  /** In [0, 1], never NaN. */
  score: number;
  /** `score >= threshold`. */
  passed: boolean;
  /** Short human-readable explanation, at most MAX_REASON_LENGTH characters. */
  reason: string;
}

import type { WorkBudget } from './work-budget.ts';

/**
 * Called once per item. Throws an Error for a per-item error (e.g. non-numeric output for
 * numeric_diff, inputs too large). Work is charged to `budget` (a fresh full one by default);
 * with a partial share it may throw OffloadRequired.
 */
export type CompiledEvaluator = (item: EvalItem, budget?: WorkBudget) => EvalResult;

/** What an evaluator body returns; `compileEvaluator` adds `passed`, checks the score and trims the reason. */
export interface Scored {
  score: number;
  reason: string;
}

export type ScoreFn = (item: EvalItem, budget: WorkBudget) => Scored;
