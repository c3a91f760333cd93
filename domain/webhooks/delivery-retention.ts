/**
 * webhook_deliveries keeps every attempt for WEBHOOK_DELIVERY_RETENTION_DAYS;
 * the reconciler deletes older ones a bounded batch at a time. Ids are
 * UUIDv7, so "older than the cutoff" is a range on the primary key: no extra
 * index, no scan of recent rows.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { deleteDeliveriesBefore } from './webhook.repository.ts';

const BATCH = 10_000;

/** The smallest UUIDv7 of millisecond `ms`: every id minted before it sorts below it. */
export function uuidv7Floor(ms: number): string {
  const hex = Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

export async function purgeOldDeliveries(em: EntityManager, retentionDays: number, now = Date.now()): Promise<number> {
  return deleteDeliveriesBefore(em, uuidv7Floor(now - retentionDays * 86_400_000), BATCH);
}
