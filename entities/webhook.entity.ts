import { defineEntity } from '@mikro-orm/core';
import { Tenant } from './tenant.entity.ts';

/**
 * A URL a tenant wants told when one of its runs ends. The signing secret is
 * kept as is (not hashed, unlike API keys) because every delivery needs it to
 * sign; it is shown to the tenant once, at creation, and never returned again.
 */
export const Webhook = defineEntity({
  name: 'Webhook',
  tableName: 'webhooks',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    url: p.text(),
    secret: p.text(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
  indexes: [{ name: 'webhooks_tenant_id_idx', properties: ['tenant_id', 'id'] }],
});
