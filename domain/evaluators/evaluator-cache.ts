import type { EntityManager } from '@mikro-orm/postgresql';
import type { Dispatcher } from 'undici';
import type { Deps } from '../shared/deps.ts';
import { evaluatorOfVersion } from '../evals/eval.repository.ts';
import { evaluatorSpecSchema, isCriteriaConfig, type EvaluatorConfig, type PassPolicy } from './evaluator.schema.ts';
import { compileScorer, type EvaluatorPool } from './evaluator-pool.ts';
import type { EvalItem, EvalResult } from './index.ts';
import { LlmJudge } from './llm-judge/llm-judge.runtime.ts';

/** The eval version's evaluator cannot run at all: the run fails, retrying cannot help. */
export class EvaluatorConfigError extends Error {
  override name = 'EvaluatorConfigError';
}

/** One evaluator as it runs: scored here (or on the pool), or by a judge over the network. */
export type SingleScorer =
  | { kind: 'deterministic'; evaluate: (item: EvalItem) => EvalResult | Promise<EvalResult> }
  | { kind: 'judge'; judge: LlmJudge };

/** A criterion as it runs: its name, its weight and its evaluator. */
export type CriterionPart = { name: string; weight: number } & SingleScorer;

/** Several criteria: `judges` says whether any is an LLM judge (then the chunk goes item by item, under the provider's limits). */
export interface CriteriaScorer {
  kind: 'criteria';
  parts: CriterionPart[];
  pass: PassPolicy;
  judges: boolean;
}

export type Scorer = SingleScorer | CriteriaScorer;

/** What evaluators run on: configuration, the limiter's Redis, and the process's pool and provider agent (the composition root owns and closes both). */
export interface EvaluatorDeps extends Pick<Deps, 'env' | 'redis'> {
  evaluatorPool: EvaluatorPool;
  providerAgent: Dispatcher;
}

/** Scorers by eval version id. Versions are immutable, so entries never go stale. */
export class EvaluatorCache {
  private readonly cache = new Map<string, Scorer>();
  private static readonly MAX = 1_000;

  constructor(private readonly container: EvaluatorDeps) {}

  /** Where provider calls run in this process: the limiters' Redis and prefix, the prompt cap, the provider agent (judges and targets alike). */
  get runtime() {
    const { redis, env, providerAgent } = this.container;
    return { redis, prefix: env.EVALGATE_QUEUE_PREFIX, maxPromptBytes: env.MAX_PROMPT_BYTES, dispatcher: providerAgent };
  }

  private single(config: EvaluatorConfig, label = ''): SingleScorer {
    if (config.type === 'llm_judge') {
      const provider = this.container.env.EVALGATE_PROVIDERS[config.provider];
      if (!provider) {
        throw new EvaluatorConfigError(`${label}llm_judge provider "${config.provider}" is not configured (EVALGATE_PROVIDERS) on this worker`);
      }
      return { kind: 'judge', judge: new LlmJudge(config, config.provider, provider, this.runtime) };
    }
    try {
      return { kind: 'deterministic', evaluate: compileScorer(config, this.container.evaluatorPool) };
    } catch (err) {
      throw new EvaluatorConfigError(`${label}invalid evaluator config: ${(err as Error).message}`);
    }
  }

  async get(em: EntityManager, evalVersionId: string): Promise<Scorer> {
    const hit = this.cache.get(evalVersionId);
    if (hit) return hit;
    const stored = await evaluatorOfVersion(em, evalVersionId);
    if (stored === undefined) throw new EvaluatorConfigError(`eval version ${evalVersionId} no longer exists`);
    const parsed = evaluatorSpecSchema.safeParse(stored);
    if (!parsed.success) {
      throw new EvaluatorConfigError(
        `invalid evaluator config: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'evaluator'}: ${i.message}`).join('; ')}`,
      );
    }
    const spec = parsed.data;
    let scorer: Scorer;
    if (isCriteriaConfig(spec)) {
      const parts = spec.criteria.map((c): CriterionPart => ({ name: c.name, weight: c.weight, ...this.single(c.evaluator, `criterion ${c.name}: `) }));
      scorer = { kind: 'criteria', parts, pass: spec.pass, judges: parts.some((p) => p.kind === 'judge') };
    } else {
      scorer = this.single(spec);
    }
    if (this.cache.size >= EvaluatorCache.MAX) this.cache.clear();
    this.cache.set(evalVersionId, scorer);
    return scorer;
  }
}
