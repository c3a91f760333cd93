import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from '../../server/sql.ts';
import { evaluatorConfigSchema } from '../evaluators/evaluator.schema.ts';
import { compileEvaluator, type EvalItem, type EvalResult } from '../evaluators/index.ts';

/** The eval version's evaluator cannot run at all: the run fails, retrying cannot help. */
export class EvaluatorConfigError extends Error {
  override name = 'EvaluatorConfigError';
}

export type Evaluate = (item: EvalItem) => EvalResult | Promise<EvalResult>;

/** Compiled evaluators by eval version id. Versions are immutable, so entries never go stale. */
export class EvaluatorCache {
  private readonly cache = new Map<string, Evaluate>();
  private static readonly MAX = 1_000;

  async get(em: EntityManager, evalVersionId: string): Promise<Evaluate> {
    const hit = this.cache.get(evalVersionId);
    if (hit) return hit;
    const [row] = await sql<{ evaluator: unknown }>(em, 'select evaluator from eval_versions where id = ?', [evalVersionId]);
    if (!row) throw new EvaluatorConfigError(`eval version ${evalVersionId} no longer exists`);
    const parsed = evaluatorConfigSchema.safeParse(row.evaluator);
    if (!parsed.success) {
      throw new EvaluatorConfigError(
        `invalid evaluator config: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'evaluator'}: ${i.message}`).join('; ')}`,
      );
    }
    let compiled: Evaluate;
    try {
      compiled = compileEvaluator(parsed.data);
    } catch (err) {
      throw new EvaluatorConfigError(`invalid evaluator config: ${(err as Error).message}`);
    }
    if (this.cache.size >= EvaluatorCache.MAX) this.cache.clear();
    this.cache.set(evalVersionId, compiled);
    return compiled;
  }
}
