import { defineEntity } from '@mikro-orm/core';
import { Dataset } from './dataset.entity.ts';
import { Tenant } from './tenant.entity.ts';

/** An immutable snapshot of a dataset's items; its items are those whose validity range covers `version`. */
export const DatasetVersion = defineEntity({
  name: 'DatasetVersion',
  tableName: 'dataset_versions',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    dataset_id: p.manyToOne(Dataset).mapToPk().fieldName('dataset_id').deleteRule('cascade'),
    version: p.integer(),
    item_count: p.integer(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
  uniques: [{ properties: ['dataset_id', 'version'] }],
});
