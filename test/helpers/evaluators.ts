import { expect } from 'vitest';
import {
  compileEvaluator,
  type EvalItem,
  type EvalResult,
  type EvaluatorConfigInput,
  WorkBudget,
} from '../../domain/evaluators/index.js';

export function item(output: unknown, expected_output: unknown = null, extra: Partial<EvalItem> = {}): EvalItem {
  return { input: null, output, expected_output, metadata: null, ...extra };
}

/** Checks the invariants every result must satisfy, then returns it. */
export function checkResult(r: EvalResult, threshold: number): EvalResult {
  expect(typeof r.score).toBe('number');
  expect(Number.isNaN(r.score)).toBe(false);
  expect(r.score).toBeGreaterThanOrEqual(0);
  expect(r.score).toBeLessThanOrEqual(1);
  expect(r.passed).toBe(r.score >= threshold);
  expect(typeof r.reason).toBe('string');
  expect(r.reason.length).toBeGreaterThan(0);
  expect(r.reason.length).toBeLessThanOrEqual(500);
  return r;
}

const DEFAULT_THRESHOLDS: Record<string, number> = { levenshtein: 0.5, token_f1: 0.5, rouge_l: 0.75 };

export function thresholdOf(config: EvaluatorConfigInput): number {
  return ('threshold' in config ? config.threshold : undefined) ?? DEFAULT_THRESHOLDS[config.type] ?? 1;
}

/** Compiles `config`, runs it on one item built from output / expected_output, checks invariants. */
export function run(config: EvaluatorConfigInput, output: unknown, expected_output: unknown = null): EvalResult {
  const r = compileEvaluator(config)(item(output, expected_output));
  return checkResult(r, thresholdOf(config));
}

/** Runs `fn` with a fresh full work budget, returning the work it charged and what it returned or threw. */
export function metered<T>(fn: (budget: WorkBudget) => T): { used: Record<string, number>; value?: T; error?: unknown } {
  const budget = new WorkBudget();
  try {
    const value = fn(budget);
    return { used: budget.used, value };
  } catch (error) {
    return { used: budget.used, error };
  }
}
