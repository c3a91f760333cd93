/**
 * `webhook delivery`: one attempt to deliver one run ending to one webhook
 * (domain/webhooks/webhook-delivery.service.ts). A failed attempt throws, and
 * BullMQ retries with `webhookBackoff` until WEBHOOK_ATTEMPTS are used up.
 * The payload holds ids only, never the URL or the secret.
 */
import type { BackoffOptions, Job, MinimalJob } from 'bullmq';
import { DeliveryError, deliverRunEnding, type DeliveryOutcome } from '../../domain/webhooks/webhook-delivery.service.ts';
import { parsePayload } from '../payload.ts';
import { webhookDeliveryPayload } from '../queues.ts';
import type { WorkerDeps } from '../deps.ts';

export { DeliveryError, parseRetryAfter, type DeliveryOutcome } from '../../domain/webhooks/webhook-delivery.service.ts';

export async function processWebhookDelivery(deps: WorkerDeps, job: Job): Promise<DeliveryOutcome> {
  const target = parsePayload(webhookDeliveryPayload, job.data);
  const attempt = job.attemptsMade + 1;
  try {
    return await deliverRunEnding(deps.container, target, attempt);
  } catch (err) {
    if (err instanceof DeliveryError) {
      const last = attempt >= (job.opts.attempts ?? 1);
      deps.log[last ? 'error' : 'warn'](
        { webhookId: target.webhook_id, runId: target.run_id, attempt, status: err.status, err: err.message },
        last ? 'webhook delivery gave up' : 'webhook delivery failed; will retry',
      );
    }
    throw err;
  }
}

/**
 * The webhook queue's backoff (Worker settings.backoffStrategy): the
 * receiver's Retry-After when it gave one, else exponential from the job's
 * `backoff.delay` with ±20 % jitter so that a receiver coming back up is not
 * hit by every retry at once.
 */
export function webhookBackoff(attemptsMade: number, _type?: string, err?: Error, job?: MinimalJob): number {
  if (err instanceof DeliveryError && err.retryAfterMs !== null) return err.retryAfterMs;
  const base = (job?.opts.backoff as BackoffOptions | undefined)?.delay ?? 1_000;
  const exp = Math.min(base * 2 ** Math.max(0, attemptsMade - 1), 24 * 3_600_000);
  return Math.round(exp * (0.8 + Math.random() * 0.4));
}
