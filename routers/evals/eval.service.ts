import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import type { EvaluatorConfig } from '../../jobs/evaluators/evaluator.schema.ts';
import { sql } from '../../server/sql.ts';

export interface EvalRow {
  id: string;
  tenant_id: string;
  name: string;
  latest_version: number;
  created_at: Date;
  updated_at: Date;
}

export interface EvalVersionRow {
  id: string;
  eval_id: string;
  version: number;
  evaluator: EvaluatorConfig;
  created_at: Date;
}

/** Creates an eval and its version 1. The evaluator must already be validated by evaluatorConfigSchema. */
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
       values (?, ?, ?, 1, ?::jsonb, now()) returning id, eval_id, version, evaluator, created_at`,
      [uuidv7(), tenantId, id, JSON.stringify(input.evaluator)],
    );
    return { eval: row as EvalRow, version: version as EvalVersionRow };
  });
}
