/**
 * Scoring one item on several criteria: every criterion is scored (a
 * criterion's error is its own outcome, not the others'), then the item's
 * verdict follows the eval version's pass policy (domain/evaluators/criteria.ts).
 * Judge criteria go through the caller's `judge`, which spends under the
 * chunk's limits, signal and budget; their tokens, cost and attempts add up on
 * the item's result.
 */
import { combineCriteria, type CriterionScore } from '../evaluators/criteria.ts';
import type { CriteriaScorer, CriterionPart } from '../evaluators/evaluator-cache.ts';
import type { JudgeOutcome, LlmJudge } from '../evaluators/llm-judge/llm-judge.runtime.ts';
import type { EvalItem } from '../evaluators/types.ts';
import { truncate } from './chunk-steps.ts';
import type { ItemResult } from './run-lifecycle.ts';

/** Asks a criterion's judge about the item (the caller counts what it spent). */
export type JudgeCall = (judge: LlmJudge) => Promise<JudgeOutcome>;

interface Usage {
  attempts: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number | null;
}

const noJudge: JudgeCall = () => Promise.reject(new Error('an llm_judge criterion is scored item by item (generate-chunk.ts)'));

export async function scoreCriteria(scorer: CriteriaScorer, itemId: string, item: EvalItem, t0: number, judge: JudgeCall = noJudge): Promise<ItemResult> {
  const usage: Usage = { attempts: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: null };
  const scores = await Promise.all(scorer.parts.map((p) => scoreCriterion(p, item, judge, usage)));
  const v = combineCriteria(scores, scorer.parts.map((p) => p.weight), scorer.pass);
  const result: ItemResult = { item_id: itemId, ...v, reason: truncate(v.reason), error: truncate(v.error), latency_ms: performance.now() - t0, scores };
  return scorer.judges ? { ...result, ...usage } : result;
}

async function scoreCriterion(part: CriterionPart, item: EvalItem, judge: JudgeCall, usage: Usage): Promise<CriterionScore> {
  const { name } = part;
  if (part.kind === 'judge') {
    // a provider refusing the credentials, or the run ending, throws: the whole chunk stops, as for one judge
    const o = await judge(part.judge);
    usage.attempts += o.attempts;
    usage.prompt_tokens += o.usage.prompt_tokens;
    usage.completion_tokens += o.usage.completion_tokens;
    if (o.cost_usd !== null) usage.cost_usd = (usage.cost_usd ?? 0) + o.cost_usd;
    return o.kind === 'scored'
      ? { name, status: o.passed ? 'passed' : 'failed', score: o.score, passed: o.passed, reason: truncate(o.reason), error: null }
      : failed(name, o.error);
  }
  try {
    const r = await part.evaluate(item);
    if (typeof r.score !== 'number' || !Number.isFinite(r.score) || r.score < 0 || r.score > 1) {
      return failed(name, `evaluator returned an invalid score (${String(r.score)}); scores must be in [0, 1]`);
    }
    return { name, status: r.passed ? 'passed' : 'failed', score: r.score, passed: r.passed, reason: truncate(r.reason), error: null };
  } catch (err) {
    return failed(name, err instanceof Error ? err.message : String(err));
  }
}

function failed(name: string, error: string): CriterionScore {
  return { name, status: 'error', score: null, passed: null, reason: null, error: truncate(error) ?? 'evaluator failed' };
}
