/** Every statement on evals and eval_versions. Callers own the transaction: a function given `tx` must run inside one. */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Eval, EvalVersion } from '../../entities/index.ts';
import type { EvaluatorSpec } from '../evaluators/evaluator.schema.ts';
import type { RowOf } from '../shared/row.ts';
import { sql } from '../shared/sql.ts';

export type EvalRow = RowOf<typeof Eval>;
/** The evaluator column holds a config validated by evaluatorConfigSchema when it was written. */
export type EvalVersionRow = RowOf<typeof EvalVersion, 'id' | 'eval_id' | 'version' | 'created_at'> & { evaluator: EvaluatorSpec };
/** An eval with its latest version's columns, prefixed `v_`. */
export type EvalWithVersionRow = EvalRow & { v_id: string; v_version: number; v_evaluator: EvaluatorSpec; v_created_at: Date };

const VERSION_COLUMNS = 'id, eval_id, version, evaluator, created_at';

export async function insertEval(tx: EntityManager, id: string, tenantId: string, name: string): Promise<EvalRow> {
  const [row] = await sql<EvalRow>(
    tx,
    `insert into evals (id, tenant_id, name, latest_version, created_at, updated_at)
       values (?, ?, ?, 1, now(), now()) returning *`,
    [id, tenantId, name],
  );
  return row as EvalRow;
}

/** Version 1 of a new eval. */
export async function insertFirstVersion(tx: EntityManager, id: string, tenantId: string, evalId: string, evaluator: EvaluatorSpec): Promise<EvalVersionRow> {
  const [row] = await sql<EvalVersionRow>(
    tx,
    `insert into eval_versions (id, tenant_id, eval_id, version, evaluator, created_at)
       values (?, ?, ?, 1, ?::jsonb, now()) returning ${VERSION_COLUMNS}`,
    [id, tenantId, evalId, JSON.stringify(evaluator)],
  );
  return row as EvalVersionRow;
}

/** Bumps latest_version (the row lock serialises concurrent writers until `tx` ends); undefined when the eval is not the tenant's. */
export async function bumpLatestVersion(tx: EntityManager, tenantId: string, evalId: string): Promise<number | undefined> {
  const [row] = await sql<{ latest_version: number }>(
    tx,
    `update evals set latest_version = latest_version + 1, updated_at = now() where id = ? and tenant_id = ? returning latest_version`,
    [evalId, tenantId],
  );
  return row?.latest_version;
}

export async function insertVersion(
  tx: EntityManager,
  id: string,
  tenantId: string,
  evalId: string,
  version: number,
  evaluator: EvaluatorSpec,
): Promise<EvalVersionRow> {
  const [row] = await sql<EvalVersionRow>(
    tx,
    `insert into eval_versions (id, tenant_id, eval_id, version, evaluator, created_at)
       values (?, ?, ?, ?, ?::jsonb, now()) returning ${VERSION_COLUMNS}`,
    [id, tenantId, evalId, version, JSON.stringify(evaluator)],
  );
  return row as EvalVersionRow;
}

const WITH_LATEST = `select e.*, v.id as v_id, v.version as v_version, v.evaluator as v_evaluator, v.created_at as v_created_at
  from evals e join eval_versions v on v.eval_id = e.id and v.version = e.latest_version`;

export async function findEval(em: EntityManager, tenantId: string, evalId: string): Promise<EvalWithVersionRow | undefined> {
  const [row] = await sql<EvalWithVersionRow>(em, `${WITH_LATEST} where e.id = ? and e.tenant_id = ?`, [evalId, tenantId]);
  return row;
}

/** Newest first (ids are UUIDv7), keyset on id; `limit + 1` rows so the caller knows whether a next page exists. */
export async function listEvals(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<EvalWithVersionRow[]> {
  return sql<EvalWithVersionRow>(
    em,
    `${WITH_LATEST} where e.tenant_id = ? ${after ? 'and e.id < ?' : ''} order by e.id desc limit ?`,
    after ? [tenantId, after, limit + 1] : [tenantId, limit + 1],
  );
}

/** A version's evaluator config as stored (the workers parse it again before scoring with it). */
export async function evaluatorOfVersion(em: EntityManager, evalVersionId: string): Promise<unknown> {
  const [row] = await sql<{ evaluator: unknown }>(em, 'select evaluator from eval_versions where id = ?', [evalVersionId]);
  return row?.evaluator;
}
