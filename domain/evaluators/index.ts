/**
 * Deterministic evaluators.
 *
 *   const evaluate = compileEvaluator(config); // once per eval version
 *   const result = evaluate(item);             // per item; throws an Error for a per-item error
 */
import { z } from 'zod';
import { validatedEvaluatorConfigSchema } from './evaluator-config.js';
import type { EvaluatorConfig, EvaluatorConfigInput } from './evaluator.schema.js';
import { isJson, jsonMatch, jsonSchema } from './json.evaluators.js';
import { numericDiff } from './numeric.evaluators.js';
import { levenshtein, rougeL, tokenF1 } from './similarity.evaluators.js';
import { containsAll, containsAny, exactMatch, regex, substring } from './string.evaluators.js';
import type { CompiledEvaluator, EvalItem, EvalResult, ScoreFn, Scored } from './types.js';
import { errorMessage, limitReason } from './value-utils.js';
import { OffloadRequired, WorkBudget } from './work-budget.js';

export type { CompiledEvaluator, EvalItem, EvalResult } from './types.js';
export {
  EVALUATOR_TYPES,
  evaluatorConfigSchema,
  type EvaluatorConfig,
  type EvaluatorConfigInput,
  type EvaluatorType,
} from './evaluator.schema.js';
export { parseEvaluatorConfig, validatedEvaluatorConfigSchema } from './evaluator-config.js';
export { OffloadRequired, WorkBudget } from './work-budget.js';

/** The deterministic evaluators; llm_judge needs the network, so it has a runtime of its own. */
export type DeterministicConfig = Exclude<EvaluatorConfig, { type: 'llm_judge' }>;

function scoreFnFor(config: DeterministicConfig): ScoreFn {
  switch (config.type) {
    case 'exact_match':
      return exactMatch(config);
    case 'contains':
    case 'icontains':
    case 'not_contains':
    case 'starts_with':
    case 'ends_with':
      return substring(config);
    case 'contains_any':
      return containsAny(config);
    case 'contains_all':
      return containsAll(config);
    case 'regex':
      return regex(config);
    case 'is_json':
      return isJson();
    case 'json_schema':
      return jsonSchema(config);
    case 'json_match':
      return jsonMatch(config);
    case 'levenshtein':
      return levenshtein(config);
    case 'numeric_diff':
      return numericDiff(config);
    case 'token_f1':
      return tokenF1(config);
    case 'rouge_l':
      return rougeL(config);
  }
}

/**
 * Builds the evaluator once per eval version; the returned function is called per item and
 * THROWS for a per-item error (e.g. output not a number for numeric_diff, inputs too large).
 *
 * The config is validated again here (with defaults filled in, regex and JSON schema compiled),
 * so a config read back from storage is accepted in its input form too. An invalid config
 * throws an Error whose message starts with 'invalid evaluator config'.
 *
 * Every result has a score in [0, 1] (never NaN), `passed = score >= threshold`, and a
 * reason of at most 500 characters. Every throw is an Error instance; stack overflows on
 * deeply nested input surface as an Error saying so.
 */
export function compileEvaluator(config: EvaluatorConfig | EvaluatorConfigInput): CompiledEvaluator {
  const parsed = validatedEvaluatorConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new Error(`invalid evaluator config: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  }
  const cfg = parsed.data;
  if (cfg.type === 'llm_judge') {
    throw new Error('llm_judge is scored by the judge runtime (domain/evaluators/llm-judge), not compileEvaluator');
  }
  const score = scoreFnFor(cfg);
  const { threshold, type } = cfg;
  return (item: EvalItem, budget = new WorkBudget()): EvalResult => {
    let r: Scored;
    try {
      r = score(item, budget);
    } catch (e) {
      if (e instanceof OffloadRequired) throw e;
      if (e instanceof RangeError) {
        throw new Error(`${type}: input too deeply nested or too large (${e.message})`, { cause: e });
      }
      if (e instanceof Error) throw e;
      throw new Error(`${type}: ${errorMessage(e)}`);
    }
    if (typeof r.score !== 'number' || Number.isNaN(r.score)) {
      throw new Error(`${type}: internal error: score is not a number`);
    }
    const s = Math.min(1, Math.max(0, r.score));
    return { score: s, passed: s >= threshold, reason: limitReason(r.reason) };
  };
}
