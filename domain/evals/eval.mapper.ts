import { iso } from '../datasets/dataset.mapper.ts';
import type { EvalRow, EvalVersionRow, EvalWithVersionRow } from './eval.repository.ts';

export function toEvalVersionDto(v: EvalVersionRow) {
  return { id: v.id, eval_id: v.eval_id, version: v.version, evaluator: v.evaluator, created_at: iso(v.created_at) };
}

export function toEvalDto(e: EvalWithVersionRow) {
  return {
    id: e.id,
    tenant_id: e.tenant_id,
    name: e.name,
    created_at: iso(e.created_at),
    latest_version: toEvalVersionDto({ id: e.v_id, eval_id: e.id, version: e.v_version, evaluator: e.v_evaluator, created_at: e.v_created_at }),
  };
}

/** A just-created eval: its row and its version 1. */
export function toCreatedEvalDto(created: { eval: EvalRow; version: EvalVersionRow }) {
  const { eval: e, version: v } = created;
  return { id: e.id, tenant_id: e.tenant_id, name: e.name, created_at: iso(e.created_at), latest_version: toEvalVersionDto(v) };
}
