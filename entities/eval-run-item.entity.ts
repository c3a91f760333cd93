import { defineEntity } from '@mikro-orm/core';
import { EvalRun } from './eval-run.entity.ts';

export const ITEM_STATUSES = ['passed', 'failed', 'error'] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** The one result of one item in one run: the primary key (run_id, item_id) is what makes scoring exactly-once. */
export const EvalRunItem = defineEntity({
  name: 'EvalRunItem',
  tableName: 'eval_run_items',
  properties: (p) => ({
    run_id: p.manyToOne(EvalRun).mapToPk().fieldName('run_id').primary().deleteRule('cascade'),
    // No foreign keys on item_id and tenant_id: they would cost a lookup per inserted
    // result on the hottest path; the run's own key already ties a result to both.
    item_id: p.uuid().primary(),
    tenant_id: p.uuid(),
    status: p.enum([...ITEM_STATUSES]),
    score: p.double().nullable(),
    passed: p.boolean().nullable(),
    reason: p.text().nullable(),
    error: p.text().nullable(),
    attempts: p.integer(),
    latency_ms: p.integer(),
    prompt_tokens: p.integer().nullable(),
    completion_tokens: p.integer().nullable(),
    cost_usd: p.double().nullable(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
  // listEvalRunItems?status=error must not scan a million passed rows to find the errors
  indexes: [{ name: 'eval_run_items_status_idx', properties: ['run_id', 'status', 'item_id'] }],
});
