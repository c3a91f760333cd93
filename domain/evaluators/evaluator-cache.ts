import type { EntityManager } from '@mikro-orm/postgresql';
import type { Dispatcher } from 'undici';
import type { Deps } from '../shared/deps.ts';
import { evaluatorOfVersion } from '../evals/eval.repository.ts';
import { evaluatorConfigSchema } from './evaluator.schema.ts';
import { compileScorer, type EvaluatorPool } from './evaluator-pool.ts';
import type { EvalItem, EvalResult } from './index.ts';
import { LlmJudge } from './llm-judge/llm-judge.runtime.ts';

/** The eval version's evaluator cannot run at all: the run fails, retrying cannot help. */
export class EvaluatorConfigError extends Error {
  override name = 'EvaluatorConfigError';
}

export type Scorer =
  | { kind: 'deterministic'; evaluate: (item: EvalItem) => EvalResult | Promise<EvalResult> }
  | { kind: 'judge'; judge: LlmJudge };

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

  async get(em: EntityManager, evalVersionId: string): Promise<Scorer> {
    const hit = this.cache.get(evalVersionId);
    if (hit) return hit;
    const stored = await evaluatorOfVersion(em, evalVersionId);
    if (stored === undefined) throw new EvaluatorConfigError(`eval version ${evalVersionId} no longer exists`);
    const parsed = evaluatorConfigSchema.safeParse(stored);
    if (!parsed.success) {
      throw new EvaluatorConfigError(
        `invalid evaluator config: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'evaluator'}: ${i.message}`).join('; ')}`,
      );
    }
    const config = parsed.data;
    let scorer: Scorer;
    if (config.type === 'llm_judge') {
      const provider = this.container.env.EVALGATE_PROVIDERS[config.provider];
      if (!provider) {
        throw new EvaluatorConfigError(`llm_judge provider "${config.provider}" is not configured (EVALGATE_PROVIDERS) on this worker`);
      }
      scorer = { kind: 'judge', judge: new LlmJudge(config, config.provider, provider, this.runtime) };
    } else {
      try {
        scorer = { kind: 'deterministic', evaluate: compileScorer(config, this.container.evaluatorPool) };
      } catch (err) {
        throw new EvaluatorConfigError(`invalid evaluator config: ${(err as Error).message}`);
      }
    }
    if (this.cache.size >= EvaluatorCache.MAX) this.cache.clear();
    this.cache.set(evalVersionId, scorer);
    return scorer;
  }
}
