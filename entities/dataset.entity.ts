import { defineEntity } from '@mikro-orm/core';
import { Tenant } from './tenant.entity.ts';

export const Dataset = defineEntity({
  name: 'Dataset',
  tableName: 'datasets',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    name: p.text(),
    description: p.text().nullable(),
    /** number of the newest DatasetVersion; a dataset starts at version 1 with no items */
    latest_version: p.integer(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
    updated_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()).onUpdate(() => new Date()),
  }),
  // lists are newest first by id (UUIDv7, so creation order)
  indexes: [{ properties: ['tenant_id', 'id'] }],
});
