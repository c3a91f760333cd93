/**
 * webhooks: registration. Delivery is in jobs/webhooks/.
 */
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { DomainError, notFound } from '../shared/errors.ts';
import { sql } from '../shared/sql.ts';

/** Every one of them is called on every run ending: a cap keeps one tenant's ending cheap. */
export const MAX_WEBHOOKS_PER_TENANT = 20;

export interface WebhookRow {
  id: string;
  tenant_id: string;
  url: string;
  created_at: Date | string;
}

/** `whsec_` + 32 random bytes: the HMAC key of every delivery, used as the UTF-8 string it is. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export async function createWebhook(em: EntityManager, tenantId: string, url: string): Promise<WebhookRow & { secret: string }> {
  const secret = generateWebhookSecret();
  // One statement: the cap cannot be passed by more than the requests racing in the same instant.
  const [row] = await sql<WebhookRow>(
    em,
    `insert into webhooks (id, tenant_id, url, secret, created_at)
     select ?, ?, ?, ?, now()
      where (select count(*) from webhooks where tenant_id = ?) < ?
     returning id, tenant_id, url, created_at`,
    [uuidv7(), tenantId, url, secret, tenantId, MAX_WEBHOOKS_PER_TENANT],
  );
  if (!row) throw new DomainError('CONFLICT', `a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first`);
  return { ...row, secret };
}

/** Newest first (ids are UUIDv7), keyset on id. */
export async function listWebhooks(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<WebhookRow[]> {
  return sql<WebhookRow>(
    em,
    `select id, tenant_id, url, created_at from webhooks where tenant_id = ? ${after ? 'and id < ?' : ''} order by id desc limit ?`,
    after ? [tenantId, after, limit + 1] : [tenantId, limit + 1],
  );
}

/** Deletes the webhook and its delivery history; its queued deliveries find it gone and do nothing. */
export async function deleteWebhook(em: EntityManager, tenantId: string, id: string): Promise<void> {
  const rows = await sql<{ id: string }>(em, 'delete from webhooks where id = ? and tenant_id = ? returning id', [id, tenantId]);
  if (rows.length === 0) throw notFound('webhook', id);
}
