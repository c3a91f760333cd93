/**
 * webhooks: owners register URLs that are told when a run ends
 * (`eval_run.completed`, `eval_run.failed`), signed with a per-webhook secret.
 * Jobs: jobs/webhooks/ (run-notifications enqueues on a run's ending and from
 * the reconciler's sweep; deliver-webhook.job POSTs, retries, records).
 * Entities: Webhook, WebhookDelivery; EvalRun.notified_at.
 */
import { z } from 'zod';
import { checkWebhookUrl } from '../../domain/webhooks/webhook-target.ts';
import { DomainError } from '../../domain/shared/errors.ts';
import { decodeCursor, toPage } from '../../domain/shared/pagination.ts';
import { ownerProcedure, router } from '../../server/trpc.ts';
import { toWebhookDto } from '../../domain/webhooks/webhook.mapper.ts';
import { createdWebhookSchema, createWebhookInput, listWebhooksInput, listWebhooksOutput, webhookIdInput } from '../../domain/webhooks/webhook.schema.ts';
import { createWebhook, deleteWebhook, listWebhooks } from '../../domain/webhooks/webhook.service.ts';

export const webhookRouter = router({
  createWebhook: ownerProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/v1/webhooks',
        operationId: 'createWebhook',
        tags: ['webhooks'],
        summary: 'Register a URL to be told when a run ends (owners only)',
        description:
          'Every run of the tenant that ends is POSTed as `{"type": "eval_run.completed" | "eval_run.failed", "run": EvalRun}`, ' +
          'signed in `Evalgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`. ' +
          'The `secret` is in this answer only. Non-2xx answers and timeouts are retried with exponential backoff ' +
          '(a `Retry-After` is honoured); redirects are not followed.',
        successDescription: 'Webhook created; keep the secret',
        errorResponses: [400, 401, 403, 409, 413, 429, 503],
      },
      successStatus: 201,
    })
    .input(createWebhookInput)
    .output(createdWebhookSchema)
    .mutation(async ({ ctx, input }) => {
      if (!ctx.container.env.WEBHOOK_ALLOW_PRIVATE_TARGETS) {
        try {
          checkWebhookUrl(input.url);
        } catch (err) {
          throw new DomainError('BAD_REQUEST', `invalid input: url: ${(err as Error).message}; webhooks may only reach public addresses`);
        }
      }
      const created = await createWebhook(ctx.em, ctx.principal.tenantId, input.url);
      ctx.log.info({ webhookId: created.id }, 'webhook created');
      return { ...toWebhookDto(created), secret: created.secret };
    }),

  listWebhooks: ownerProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/v1/webhooks',
        operationId: 'listWebhooks',
        tags: ['webhooks'],
        summary: 'List the tenant\'s webhooks, newest first (owners only; secrets are never shown again)',
        errorResponses: [400, 401, 403, 429, 503],
      },
    })
    .input(listWebhooksInput)
    .output(listWebhooksOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listWebhooks(ctx.em, ctx.principal.tenantId, decodeCursor(input.cursor, 'string'), input.limit);
      return toPage(rows, input.limit, (r) => r.id, toWebhookDto);
    }),

  deleteWebhook: ownerProcedure
    .meta({
      openapi: {
        method: 'DELETE',
        path: '/v1/webhooks/{id}',
        operationId: 'deleteWebhook',
        tags: ['webhooks'],
        summary: 'Delete a webhook with its delivery history (owners only); queued deliveries are dropped',
        successDescription: 'Webhook deleted',
        errorResponses: [400, 401, 403, 404, 429, 503],
      },
      successStatus: 204,
    })
    .input(webhookIdInput)
    .output(z.void())
    .mutation(async ({ ctx, input }) => {
      await deleteWebhook(ctx.em, ctx.principal.tenantId, input.id);
      ctx.log.info({ webhookId: input.id }, 'webhook deleted');
    }),
});
