/** evals use cases. An eval version's evaluator is immutable once written. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { checkEvaluatorEngines, type EvaluatorPool } from '../evaluators/evaluator-pool.ts';
import { isCriteriaConfig, type EvaluatorConfig, type EvaluatorSpec } from '../evaluators/evaluator.schema.ts';
import { DomainError, formatIssues, notFound } from '../shared/errors.ts';
import * as repo from './eval.repository.ts';
import type { EvalRow, EvalVersionRow, EvalWithVersionRow } from './eval.repository.ts';

export type { EvalRow, EvalVersionRow, EvalWithVersionRow } from './eval.repository.ts';

/** The providers an llm_judge evaluator may name (EVALGATE_PROVIDERS): only the names matter here. */
export type KnownProviders = Record<string, unknown>;

/** What checking an evaluator needs: the configured providers and the process's evaluator threads. */
export interface EvaluatorChecks {
  providers: KnownProviders;
  pool: EvaluatorPool;
}

/**
 * The checks the zod union cannot do, reported under `evaluator.`: an
 * llm_judge's provider must be configured, a regex must compile under RE2,
 * a JSON schema under ajv. A JSON schema costly to compile is compiled on a
 * worker thread, so the API's event loop stays free.
 */
export async function checkEvaluator(evaluator: EvaluatorSpec, checks: EvaluatorChecks): Promise<EvaluatorSpec> {
  if (isCriteriaConfig(evaluator)) {
    // each criterion's evaluator gets the same checks, its issues named under evaluator.criteria.<i>.evaluator
    for (const [i, c] of evaluator.criteria.entries()) await checkOne(c.evaluator, checks, ['evaluator', 'criteria', i, 'evaluator']);
  } else {
    await checkOne(evaluator, checks, ['evaluator']);
  }
  return evaluator;
}

async function checkOne(evaluator: EvaluatorConfig, { providers, pool }: EvaluatorChecks, at: (string | number)[]): Promise<void> {
  if (evaluator.type === 'llm_judge' && !Object.hasOwn(providers, evaluator.provider)) {
    const known = Object.keys(providers);
    throw new DomainError(
      'BAD_REQUEST',
      `invalid input: ${[...at, 'provider'].join('.')}: unknown provider "${evaluator.provider}" (configured: ${known.length ? known.join(', ') : 'none; set EVALGATE_PROVIDERS'})`,
    );
  }
  const issues = await checkEvaluatorEngines(evaluator, pool);
  if (issues.length > 0) {
    throw new DomainError('BAD_REQUEST', formatIssues(issues.map((i) => ({ ...i, path: [...at, ...i.path] }))));
  }
}

/**
 * Creates an eval and its version 1. With `check`, the evaluator goes through
 * checkEvaluator first; without, it must already be fully validated.
 */
export async function createEval(
  em: EntityManager,
  tenantId: string,
  input: { name: string; evaluator: EvaluatorSpec },
  check?: EvaluatorChecks,
): Promise<{ eval: EvalRow; version: EvalVersionRow }> {
  if (check) await checkEvaluator(input.evaluator, check);
  return em.transactional(async (tx) => {
    const row = await repo.insertEval(tx, uuidv7(), tenantId, input.name);
    const version = await repo.insertFirstVersion(tx, uuidv7(), tenantId, row.id, input.evaluator);
    return { eval: row, version };
  });
}

/** Appends a version (checked like createEval's when `check` is given); the eval row's lock serialises concurrent writers. */
export async function createEvalVersion(
  em: EntityManager,
  tenantId: string,
  evalId: string,
  evaluator: EvaluatorSpec,
  check?: EvaluatorChecks,
): Promise<EvalVersionRow> {
  if (check) await checkEvaluator(evaluator, check);
  return em.transactional(async (tx) => {
    const version = await repo.bumpLatestVersion(tx, tenantId, evalId);
    if (version === undefined) throw notFound('eval', evalId);
    return repo.insertVersion(tx, uuidv7(), tenantId, evalId, version, evaluator);
  });
}

export async function findEval(em: EntityManager, tenantId: string, evalId: string): Promise<EvalWithVersionRow> {
  const row = await repo.findEval(em, tenantId, evalId);
  if (!row) throw notFound('eval', evalId);
  return row;
}

/** `limit + 1` evals with their latest version, newest first, after the key `after`. */
export async function listEvals(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<EvalWithVersionRow[]> {
  return repo.listEvals(em, tenantId, after, limit);
}
