/**
 * webhooks: registration. Delivery is webhook-delivery.service.ts (run by
 * jobs/webhooks/deliver-webhook.job.ts); enqueueing, run-notifications.ts.
 */
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { DomainError, notFound } from '../shared/errors.ts';
import * as repo from './webhook.repository.ts';
import type { WebhookRow } from './webhook.repository.ts';
import { checkWebhookUrl } from './webhook-target.ts';

export type { WebhookRow } from './webhook.repository.ts';

/** Every one of them is called on every run ending: a cap keeps one tenant's ending cheap. */
export const MAX_WEBHOOKS_PER_TENANT = 20;

/** `whsec_` + 32 random bytes: the HMAC key of every delivery, used as the UTF-8 string it is. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/**
 * Registers a URL; the returned secret is the only time it leaves Postgres.
 * Unless `allowPrivate`, a URL that is on its face not public (an IP literal,
 * a localhost name) is refused; names are judged again at every delivery.
 */
export async function createWebhook(
  em: EntityManager,
  tenantId: string,
  url: string,
  opts: { allowPrivate: boolean },
): Promise<WebhookRow & { secret: string }> {
  if (!opts.allowPrivate) {
    try {
      checkWebhookUrl(url);
    } catch (err) {
      throw new DomainError('BAD_REQUEST', `invalid input: url: ${(err as Error).message}; webhooks may only reach public addresses`);
    }
  }
  const secret = generateWebhookSecret();
  const row = await repo.insertWebhookCapped(em, { id: uuidv7(), tenantId, url, secret }, MAX_WEBHOOKS_PER_TENANT);
  if (!row) throw new DomainError('CONFLICT', `a tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first`);
  return { ...row, secret };
}

/** `limit + 1` webhooks, newest first, after the key `after`. */
export async function listWebhooks(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<WebhookRow[]> {
  return repo.listWebhooks(em, tenantId, after, limit);
}

/** Deletes the webhook and its delivery history; its queued deliveries find it gone and do nothing. */
export async function deleteWebhook(em: EntityManager, tenantId: string, id: string): Promise<void> {
  if (!(await repo.deleteWebhook(em, tenantId, id))) throw notFound('webhook', id);
}
