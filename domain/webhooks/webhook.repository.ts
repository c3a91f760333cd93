/** Every statement on webhooks and webhook_deliveries. */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Webhook, WebhookDelivery, WebhookEventType } from '../../entities/index.ts';
import { ENDING_SQL } from '../eval-runs/eval-run.repository.ts';
import type { RowOf } from '../shared/row.ts';
import { sql } from '../shared/sql.ts';

/** A webhook as it is listed: never its secret. */
export type WebhookRow = RowOf<typeof Webhook, 'id' | 'tenant_id' | 'url' | 'created_at'>;
/** What a delivery needs of its webhook. */
export type WebhookTargetRow = RowOf<typeof Webhook, 'tenant_id' | 'url' | 'secret'>;
/** What a delivery attempt records. */
export type DeliveryAttempt = RowOf<typeof WebhookDelivery, 'id' | 'tenant_id' | 'webhook_id' | 'run_id' | 'attempt' | 'status_code' | 'error' | 'duration_ms'> & {
  event_type: WebhookEventType;
  /** the ending announced: the run's completed_at in whole epoch milliseconds */
  ending: number;
};


/**
 * Inserts a webhook unless the tenant has `max` already; undefined when it has.
 * One statement: the cap cannot be passed by more than the requests racing in the same instant.
 */
export async function insertWebhookCapped(
  em: EntityManager,
  row: { id: string; tenantId: string; url: string; secret: string },
  max: number,
): Promise<WebhookRow | undefined> {
  const [created] = await sql<WebhookRow>(
    em,
    `insert into webhooks (id, tenant_id, url, secret, created_at)
     select ?, ?, ?, ?, now()
      where (select count(*) from webhooks where tenant_id = ?) < ?
     returning id, tenant_id, url, created_at`,
    [row.id, row.tenantId, row.url, row.secret, row.tenantId, max],
  );
  return created;
}

/** Newest first (ids are UUIDv7), keyset on id; `limit + 1` rows so the caller knows whether a next page exists. */
export async function listWebhooks(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<WebhookRow[]> {
  return sql<WebhookRow>(
    em,
    `select id, tenant_id, url, created_at from webhooks where tenant_id = ? ${after ? 'and id < ?' : ''} order by id desc limit ?`,
    after ? [tenantId, after, limit + 1] : [tenantId, limit + 1],
  );
}

/** Deletes the webhook (its deliveries cascade); false when it is not the tenant's. */
export async function deleteWebhook(em: EntityManager, tenantId: string, id: string): Promise<boolean> {
  const rows = await sql<{ id: string }>(em, 'delete from webhooks where id = ? and tenant_id = ? returning id', [id, tenantId]);
  return rows.length > 0;
}

/** The ids of the tenant's webhooks, in id order. */
export async function webhookIdsOfTenant(em: EntityManager, tenantId: string): Promise<string[]> {
  const rows = await sql<{ id: string }>(em, 'select id from webhooks where tenant_id = ? order by id', [tenantId]);
  return rows.map((r) => r.id);
}

export async function findWebhookTarget(em: EntityManager, id: string): Promise<WebhookTargetRow | undefined> {
  const [row] = await sql<WebhookTargetRow>(em, 'select tenant_id, url, secret from webhooks where id = ?', [id]);
  return row;
}

/** Records one delivery attempt (run_ended_at from the run's row: see the statement). */
export async function insertDeliveryAttempt(em: EntityManager, a: DeliveryAttempt): Promise<void> {
  await sql(
    em,
    `insert into webhook_deliveries (id, tenant_id, webhook_id, run_id, event_type, run_ended_at, attempt, status_code, error, duration_ms, delivered_at)
     values (?, ?, ?, ?, ?,
             -- the exact timestamptz (a JS Date would drop its microseconds); the key if a retry re-opened the run meanwhile
             coalesce((select completed_at from eval_runs where id = ? and ${ENDING_SQL} = ?), to_timestamp(?::float8 / 1000)),
             ?, ?, ?, ?, now())`,
    [a.id, a.tenant_id, a.webhook_id, a.run_id, a.event_type, a.run_id, a.ending, a.ending, a.attempt, a.status_code, a.error, a.duration_ms],
  );
}

/** Deletes at most `batch` deliveries whose (UUIDv7) id sorts below `beforeId`; returns how many. */
export async function deleteDeliveriesBefore(em: EntityManager, beforeId: string, batch: number): Promise<number> {
  const rows = await sql(
    em,
    'delete from webhook_deliveries where id in (select id from webhook_deliveries where id < ? order by id limit ?) returning 1',
    [beforeId, batch],
  );
  return rows.length;
}
