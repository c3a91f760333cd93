/**
 * Tasks run on the evaluator pool's worker threads (./evaluator-pool.ts), where
 * an evaluation may spend the whole of each bound in ./limits.ts without
 * delaying the HTTP server or the queue on the main thread.
 */
import { LRUCache } from 'lru-cache';
import { compileEvaluator, type CompiledEvaluator, type EvalItem, type EvalResult } from './index.ts';
import { validatedEvaluatorConfigSchema } from './evaluator-config.ts';
import type { DeterministicConfig } from './index.ts';
import { errorMessage } from './value-utils.ts';
import { WorkBudget } from './work-budget.ts';

export type ThreadScore =
  | { ok: true; result: EvalResult; used: Record<string, number> }
  | { ok: false; message: string; used: Record<string, number> };

export interface ThreadIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * Compiled evaluators by config JSON: a thread scores many items of one eval
 * version. Read with `peek`, so a hit does not refresh an entry: the oldest
 * compiled goes first.
 */
const compiled = new LRUCache<string, CompiledEvaluator>({ max: 100 });

function evaluatorFor(config: DeterministicConfig): CompiledEvaluator {
  const key = JSON.stringify(config);
  let ev = compiled.peek(key);
  if (ev === undefined) {
    ev = compileEvaluator(config);
    compiled.set(key, ev);
  }
  return ev;
}

/** Scores one item with the full bounds. Errors are returned as messages: an Error does not survive the thread boundary intact. */
export function score(task: { config: DeterministicConfig; item: EvalItem }): ThreadScore {
  const budget = new WorkBudget();
  try {
    return { ok: true, result: evaluatorFor(task.config)(task.item, budget), used: budget.used };
  } catch (e) {
    return { ok: false, message: errorMessage(e), used: budget.used };
  }
}

/** The engine checks of a config (regex and JSON schema compile), as zod issues. */
export function check(task: { config: unknown }): ThreadIssue[] {
  const r = validatedEvaluatorConfigSchema.safeParse(task.config);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message }));
}
