import type { WebhookDto } from './webhook.schema.ts';
import type { WebhookRow } from './webhook.service.ts';

export function toWebhookDto(r: WebhookRow): WebhookDto {
  return { id: r.id, url: r.url, created_at: new Date(r.created_at).toISOString() };
}
