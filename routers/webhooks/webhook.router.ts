/**
 * webhooks: owners register URLs that are told when a run ends
 * (`eval_run.completed`, `eval_run.failed`), signed with a per-webhook secret.
 * Jobs: jobs/webhooks/deliver-webhook.job.ts (POSTs, retries, records), fed by
 * domain/webhooks/run-notifications.ts on a run's ending and from the reconciler's sweep.
 * Entities: Webhook, WebhookDelivery; EvalRun.notified_at.
 */
import { z } from 'zod';
import { decodeCursor, toPage } from '../../domain/shared/pagination.ts';
import { ownerProcedure, router } from '../../server/trpc.ts';
import { restMeta } from '../meta.ts';
import { toCreatedWebhookDto, toWebhookDto } from '../../domain/webhooks/webhook.mapper.ts';
import { createdWebhookSchema, createWebhookInput, listWebhooksInput, listWebhooksOutput, webhookIdInput } from '../../domain/webhooks/webhook.schema.ts';
import { createWebhook, deleteWebhook, listWebhooks } from '../../domain/webhooks/webhook.service.ts';

const rest = restMeta('webhooks');

export const webhookRouter = router({
  createWebhook: ownerProcedure
    .meta(
      rest('POST', '/v1/webhooks', {
        summary: 'Register a URL to be told when a run ends (owners only)',
        description:
          'Every run of the tenant that ends is POSTed as `{"type": "eval_run.completed" | "eval_run.failed", "run": EvalRun}`, ' +
          'signed in `Evalgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`. ' +
          'The `secret` is in this answer only. Non-2xx answers and timeouts are retried with exponential backoff ' +
          '(a `Retry-After` is honoured); redirects are not followed.',
        successDescription: 'Webhook created; keep the secret',
        errors: [409, 413],
        successStatus: 201,
      }),
    )
    .input(createWebhookInput)
    .output(createdWebhookSchema)
    .mutation(async ({ ctx, input }) => {
      const created = await createWebhook(ctx.em, ctx.principal.tenantId, input.url, { allowPrivate: ctx.container.env.WEBHOOK_ALLOW_PRIVATE_TARGETS });
      ctx.log.info({ webhookId: created.id }, 'webhook created');
      return toCreatedWebhookDto(created);
    }),

  listWebhooks: ownerProcedure
    .meta(rest('GET', '/v1/webhooks', { summary: 'List the tenant\'s webhooks, newest first (owners only; secrets are never shown again)' }))
    .input(listWebhooksInput)
    .output(listWebhooksOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listWebhooks(ctx.em, ctx.principal.tenantId, decodeCursor(input.cursor, 'string'), input.limit);
      return toPage(rows, input.limit, (r) => r.id, toWebhookDto);
    }),

  deleteWebhook: ownerProcedure
    .meta(
      rest('DELETE', '/v1/webhooks/{id}', {
        summary: 'Delete a webhook with its delivery history (owners only); queued deliveries are dropped',
        successDescription: 'Webhook deleted',
        errors: [404],
        successStatus: 204,
      }),
    )
    .input(webhookIdInput)
    .output(z.void())
    .mutation(async ({ ctx, input }) => {
      await deleteWebhook(ctx.em, ctx.principal.tenantId, input.id);
      ctx.log.info({ webhookId: input.id }, 'webhook deleted');
    }),
});
