import { defineEntity } from '@mikro-orm/core';
import { Tenant } from './tenant.entity.ts';

export const Eval = defineEntity({
  name: 'Eval',
  tableName: 'evals',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    name: p.text(),
    latest_version: p.integer(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
    updated_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()).onUpdate(() => new Date()),
  }),
  indexes: [{ properties: ['tenant_id', 'id'] }],
});
