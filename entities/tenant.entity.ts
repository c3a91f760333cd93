import { defineEntity } from '@mikro-orm/core';

/** An organization. Session JWTs map to it through `external_org_id`. */
export const Tenant = defineEntity({
  name: 'Tenant',
  tableName: 'tenants',
  properties: (p) => ({
    id: p.uuid().primary(),
    name: p.text(),
    external_org_id: p.text().nullable().unique(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
});
