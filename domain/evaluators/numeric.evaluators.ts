/**
 * numeric_diff: closeness of two numbers.
 */
import type { EvaluatorConfig } from './evaluator.schema.js';
import { resolveTarget } from './target.js';
import type { ScoreFn } from './types.js';
import { fmt, parseNumber, quote, toText } from './value-utils.js';

type ConfigOf<T extends EvaluatorConfig['type']> = Extract<EvaluatorConfig, { type: T }>;

/**
 * a = output, b = target (JSON numbers or numeric strings), d = |a − b|.
 * Within tolerance: d ≤ tolerance, or with `relative`, d ≤ tolerance × |b|
 * (so a target of 0 then needs an exact match).
 * Score = 1 within tolerance, else max(0, 1 − d / max(|a|, |b|)): the relative
 * difference, 0 for numbers of opposite sign. max(|a|, |b|) > 0 whenever d > 0,
 * and an overflowing d (Infinity) gives 0, so the score is never NaN.
 * A non-numeric output or target is a per-item error.
 */
export function numericDiff(config: ConfigOf<'numeric_diff'>): ScoreFn {
  return (item) => {
    const { value, label } = resolveTarget(config, item);
    const a = parseNumber(item.output);
    if (a === null) throw new Error(`output is not a number: ${quote(toText(item.output), 60)}`);
    const b = parseNumber(value);
    if (b === null) throw new Error(`${label} is not a number: ${quote(toText(value), 60)}`);
    const d = Math.abs(a - b);
    const allowed = config.relative ? config.tolerance * Math.abs(b) : config.tolerance;
    const tol = config.relative ? `${fmt(config.tolerance)} × |${label}| = ${fmt(allowed)}` : fmt(allowed);
    if (d <= allowed) {
      return { score: 1, reason: `output ${a} is within ${tol} of ${label} ${b} (difference ${fmt(d)})` };
    }
    const raw = 1 - d / Math.max(Math.abs(a), Math.abs(b));
    const score = Number.isFinite(raw) ? Math.max(0, raw) : 0;
    return { score, reason: `output ${a} differs from ${label} ${b} by ${fmt(d)}, more than ${tol}` };
  };
}
