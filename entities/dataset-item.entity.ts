import { defineEntity } from '@mikro-orm/core';
import { Dataset } from './dataset.entity.ts';
import { Tenant } from './tenant.entity.ts';

/**
 * One item, valid in versions [valid_from, valid_to). A new version closes or
 * adds rows and never copies unchanged ones. Ids are UUIDv7, so keyset order
 * follows insertion order and inserts stay at the right edge of the index.
 */
export const DatasetItem = defineEntity({
  name: 'DatasetItem',
  tableName: 'dataset_items',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    // No foreign key (migration Migration20261204220000RunDeletions): a deleted dataset's items go in the background,
    // in bounded batches (domain/eval-runs/run-deletion.service.ts).
    dataset_id: p.manyToOne(Dataset).mapToPk().fieldName('dataset_id').createForeignKeyConstraint(false),
    valid_from: p.integer(),
    valid_to: p.integer().nullable(),
    input: p.json<unknown>().columnType('jsonb'),
    expected_output: p.json<unknown>().columnType('jsonb').nullable(),
    output: p.json<unknown>().columnType('jsonb').nullable(),
    metadata: p.json<Record<string, unknown>>().columnType('jsonb').nullable(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
  indexes: [{ name: 'dataset_items_keyset_idx', properties: ['dataset_id', 'id', 'valid_from', 'valid_to'] }],
});
