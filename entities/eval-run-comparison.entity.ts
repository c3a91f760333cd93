import { defineEntity } from '@mikro-orm/core';
import { EvalRun } from './eval-run.entity.ts';
import { Tenant } from './tenant.entity.ts';

/**
 * A pair of finished runs' compare summary (domain/eval-runs/compare.repository.ts),
 * kept while both runs are as they were when it was computed: `base_version`
 * and `head_version` are the runs' versions then (status, counters,
 * updated_at, completed_at); a read whose runs moved on recomputes it.
 */
export const EvalRunComparison = defineEntity({
  name: 'EvalRunComparison',
  tableName: 'eval_run_comparisons',
  properties: (p) => ({
    base_run_id: p.manyToOne(EvalRun).mapToPk().fieldName('base_run_id').primary().deleteRule('cascade'),
    head_run_id: p.manyToOne(EvalRun).mapToPk().fieldName('head_run_id').primary().deleteRule('cascade').index('eval_run_comparisons_head_run_id_index'),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    base_version: p.text(),
    head_version: p.text(),
    summary: p.json<Record<string, unknown>>().columnType('jsonb'),
    computed_at: p.datetime().columnType('timestamptz'),
  }),
});
