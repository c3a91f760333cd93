/**
 * webhooks: one zod schema per procedure (tRPC input, REST document). Imports only zod.
 */
import { z } from 'zod';
import { checkSafeJson, cursor, dateTime, limit, page, uuid } from '../shared/common.schema.ts';

export const MAX_WEBHOOK_URL_LENGTH = 2_048;

export const createWebhookInput = z.object({
  url: z
    .url({ protocol: /^https?$/, error: 'must be an absolute http:// or https:// URL' })
    .max(MAX_WEBHOOK_URL_LENGTH)
    .describe('Where to POST `eval_run.completed` and `eval_run.failed` events'),
})
  .superRefine((v, ctx) => checkSafeJson(v.url, ctx, ['url']));

export const webhookIdInput = z.object({ id: uuid().describe('Webhook id') });

export const listWebhooksInput = z.object({ cursor, limit });

export const webhookSchema = z
  .object({
    id: uuid(),
    url: z.string(),
    created_at: dateTime(),
  })
  .meta({ id: 'Webhook' });
export type WebhookDto = z.infer<typeof webhookSchema>;

export const createdWebhookSchema = webhookSchema
  .extend({
    secret: z
      .string()
      .describe('Signing secret (`whsec_…`): shown once, here. Verify each delivery\'s `Evalgate-Signature` with it'),
  })
  .meta({ id: 'CreatedWebhook' });
export type CreatedWebhookDto = z.infer<typeof createdWebhookSchema>;

export const listWebhooksOutput = page(webhookSchema);
