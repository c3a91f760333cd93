import { defineEntity } from '@mikro-orm/core';
import { Tenant } from './tenant.entity.ts';

export const ROLES = ['owner', 'member', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** A `tl_…` API key. Only the SHA-256 of the key is stored; the key itself is shown once. */
export const ApiKey = defineEntity({
  name: 'ApiKey',
  tableName: 'api_keys',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade').index(),
    name: p.text().nullable(),
    role: p.enum([...ROLES]),
    /** hex SHA-256 of the whole key */
    key_hash: p.text().unique(),
    /** first characters of the key, so a person can tell keys apart */
    key_prefix: p.text(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
    revoked_at: p.datetime().columnType('timestamptz').nullable(),
  }),
});
