import { defineEntity } from '@mikro-orm/core';
import { Eval } from './eval.entity.ts';
import { Tenant } from './tenant.entity.ts';

/** An immutable evaluator definition, validated by evaluatorConfigSchema when created. */
export const EvalVersion = defineEntity({
  name: 'EvalVersion',
  tableName: 'eval_versions',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    eval_id: p.manyToOne(Eval).mapToPk().fieldName('eval_id').deleteRule('cascade'),
    version: p.integer(),
    evaluator: p.json<Record<string, unknown>>().columnType('jsonb'),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
  uniques: [{ properties: ['eval_id', 'version'] }],
});
