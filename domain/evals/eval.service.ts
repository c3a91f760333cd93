/** evals domain operations. An eval version's evaluator is immutable once written. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import type { EvaluatorConfig } from '../evaluators/evaluator.schema.ts';
import { notFound } from '../shared/errors.ts';
import { sql } from '../shared/sql.ts';

export interface EvalRow {
  id: string;
  tenant_id: string;
  name: string;
  latest_version: number;
  created_at: Date | string;
  updated_at: Date | string;
}

export interface EvalVersionRow {
  id: string;
  eval_id: string;
  version: number;
  evaluator: EvaluatorConfig;
  created_at: Date | string;
}

const VERSION_COLUMNS = 'id, eval_id, version, evaluator, created_at';

/** Creates an eval and its version 1. The evaluator must already be fully validated. */
export async function createEval(
  em: EntityManager,
  tenantId: string,
  input: { name: string; evaluator: EvaluatorConfig },
): Promise<{ eval: EvalRow; version: EvalVersionRow }> {
  return em.transactional(async (tx) => {
    const id = uuidv7();
    const [row] = await sql<EvalRow>(
      tx,
      `insert into evals (id, tenant_id, name, latest_version, created_at, updated_at)
       values (?, ?, ?, 1, now(), now()) returning *`,
      [id, tenantId, input.name],
    );
    const [version] = await sql<EvalVersionRow>(
      tx,
      `insert into eval_versions (id, tenant_id, eval_id, version, evaluator, created_at)
       values (?, ?, ?, 1, ?::jsonb, now()) returning ${VERSION_COLUMNS}`,
      [uuidv7(), tenantId, id, JSON.stringify(input.evaluator)],
    );
    return { eval: row as EvalRow, version: version as EvalVersionRow };
  });
}

/** Appends a version; the eval row's lock serialises concurrent writers. */
export async function createEvalVersion(em: EntityManager, tenantId: string, evalId: string, evaluator: EvaluatorConfig): Promise<EvalVersionRow> {
  return em.transactional(async (tx) => {
    const [bumped] = await sql<{ latest_version: number }>(
      tx,
      `update evals set latest_version = latest_version + 1, updated_at = now() where id = ? and tenant_id = ? returning latest_version`,
      [evalId, tenantId],
    );
    if (!bumped) throw notFound('eval', evalId);
    const [version] = await sql<EvalVersionRow>(
      tx,
      `insert into eval_versions (id, tenant_id, eval_id, version, evaluator, created_at)
       values (?, ?, ?, ?, ?::jsonb, now()) returning ${VERSION_COLUMNS}`,
      [uuidv7(), tenantId, evalId, bumped.latest_version, JSON.stringify(evaluator)],
    );
    return version as EvalVersionRow;
  });
}

export type EvalWithVersionRow = EvalRow & { v_id: string; v_version: number; v_evaluator: EvaluatorConfig; v_created_at: Date | string };

const WITH_LATEST = `select e.*, v.id as v_id, v.version as v_version, v.evaluator as v_evaluator, v.created_at as v_created_at
  from evals e join eval_versions v on v.eval_id = e.id and v.version = e.latest_version`;

export async function findEval(em: EntityManager, tenantId: string, evalId: string): Promise<EvalWithVersionRow> {
  const [row] = await sql<EvalWithVersionRow>(em, `${WITH_LATEST} where e.id = ? and e.tenant_id = ?`, [evalId, tenantId]);
  if (!row) throw notFound('eval', evalId);
  return row;
}

export async function listEvals(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<EvalWithVersionRow[]> {
  return sql<EvalWithVersionRow>(
    em,
    `${WITH_LATEST} where e.tenant_id = ? ${after ? 'and e.id < ?' : ''} order by e.id desc limit ?`,
    after ? [tenantId, after, limit + 1] : [tenantId, limit + 1],
  );
}
