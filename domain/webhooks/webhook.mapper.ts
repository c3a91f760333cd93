import type { CreatedWebhookDto, WebhookDto } from './webhook.schema.ts';
import type { WebhookRow } from './webhook.repository.ts';

export function toWebhookDto(r: WebhookRow): WebhookDto {
  return { id: r.id, url: r.url, created_at: new Date(r.created_at).toISOString() };
}

/** The answer to a registration: the one time the secret is shown. */
export function toCreatedWebhookDto(r: WebhookRow & { secret: string }): CreatedWebhookDto {
  return { ...toWebhookDto(r), secret: r.secret };
}
