/**
 * Delivering one run ending to one webhook: POST it, signed, and record the
 * attempt in webhook_deliveries whatever its outcome. A non-2xx answer, a
 * timeout or a refused connection throws a DeliveryError, which the queue
 * retries. URL and secret are read from Postgres at each attempt, so a
 * deleted webhook stops receiving at once.
 */
import { v7 as uuidv7 } from 'uuid';
import type { WebhookEventType } from '../../entities/index.ts';
import { runForDelivery } from '../eval-runs/eval-run.repository.ts';
import { toEvalRunDto } from '../eval-runs/eval-run.mapper.ts';
import type { Deps } from '../shared/deps.ts';
import { postWebhook } from './webhook-http.ts';
import { findWebhookTarget, insertDeliveryAttempt } from './webhook.repository.ts';
import { signWebhook } from './webhook-signature.ts';
import { PrivateTargetError } from './webhook-target.ts';

/** A receiver may ask for a pause, but not for one that outlives any reasonable incident. */
const MAX_RETRY_AFTER_MS = 3_600_000;
const MAX_ERROR_LENGTH = 500;

/** A failed attempt; `retryAfterMs` is the receiver's Retry-After, when it sent one; `status` its HTTP status, when it answered. */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  constructor(
    message: string,
    public readonly retryAfterMs: number | null,
    public readonly status: number | null = null,
  ) {
    super(message);
  }
}

export interface DeliveryOutcome {
  skipped?: string;
  status?: number;
}

/** Which ending of which run goes to which webhook (the delivery job's payload). */
export interface DeliveryTarget {
  webhook_id: string;
  run_id: string;
  /** the run's completed_at in epoch ms */
  ending: number;
}

/**
 * One attempt (`attempt` counts from 1). Skips, without recording anything,
 * a webhook or run that is gone, an ending a retry of the run superseded, and
 * an ending already delivered; throws DeliveryError after recording a failed attempt.
 */
export async function deliverRunEnding(deps: Pick<Deps, 'env' | 'orm'>, target: DeliveryTarget, attempt: number): Promise<DeliveryOutcome> {
  const { webhook_id, run_id, ending } = target;
  const { env } = deps;
  const em = deps.orm.em.fork();

  const hook = await findWebhookTarget(em, webhook_id);
  if (!hook) return { skipped: 'webhook deleted' };
  // Scoped by the webhook's tenant: a payload naming another tenant's run finds nothing.
  const run = await runForDelivery(em, webhook_id, run_id, hook.tenant_id);
  if (!run) return { skipped: 'run deleted' };
  if ((run.status !== 'completed' && run.status !== 'failed') || Number(run.ending) !== ending) {
    // A retry re-opened the run after this ending; its next ending is delivered instead.
    return { skipped: 'superseded by a later ending of the run' };
  }
  if (run.delivered) return { skipped: 'already delivered' };

  const type: WebhookEventType = run.status === 'completed' ? 'eval_run.completed' : 'eval_run.failed';
  const body = JSON.stringify({ type, run: toEvalRunDto(run) });
  const timestamp = Math.floor(Date.now() / 1000);
  const started = performance.now();
  let status: number | null = null;
  let failure: DeliveryError | null = null;
  try {
    const res = await postWebhook(
      hook.url,
      {
        'content-type': 'application/json',
        'user-agent': 'evalgate-webhooks',
        'evalgate-event': type,
        'evalgate-event-id': `${run_id}-${ending}`,
        'evalgate-signature': signWebhook(hook.secret, body, timestamp),
      },
      body,
      // Redirects are never followed: one would re-send the event somewhere the owner did not register.
      { timeoutMs: env.WEBHOOK_TIMEOUT_MS, allowPrivate: env.WEBHOOK_ALLOW_PRIVATE_TARGETS },
    );
    status = res.status;
    if (status < 200 || status > 299) {
      const hint = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
      failure = new DeliveryError(`receiver answered ${status}${hint}`, parseRetryAfter(res.retryAfter), status);
    }
  } catch (err) {
    failure = new DeliveryError(describeFetchError(err, env.WEBHOOK_TIMEOUT_MS), null);
  }
  const durationMs = Math.round(performance.now() - started);

  await insertDeliveryAttempt(em, {
    id: uuidv7(),
    tenant_id: hook.tenant_id,
    webhook_id,
    run_id,
    event_type: type,
    ending,
    attempt,
    status_code: status,
    error: failure?.message.slice(0, MAX_ERROR_LENGTH) ?? null,
    duration_ms: durationMs,
  });
  if (failure) throw failure;
  return { status: status as number };
}

/** Retry-After as seconds or an HTTP date, capped; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  const v = value.trim();
  let ms: number;
  if (/^\d+$/.test(v)) ms = Number(v) * 1000;
  else {
    // an HTTP date names its weekday and month; Date.parse would take "-5" for a year
    const at = /[a-z]/i.test(v) ? Date.parse(v) : Number.NaN;
    if (Number.isNaN(at)) return null;
    ms = at - now;
  }
  return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_MS);
}

/** A short reason without the URL (it may carry a token the owner put in it). */
function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; code?: string; cause?: { name?: string; code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError' || (e.name === 'AbortError' && e.code === 'ABORT_ERR')) return `no answer within ${timeoutMs} ms`;
  if (err instanceof PrivateTargetError) return `refused: ${e.message} (WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows it)`;
  const code = e.code ?? e.cause?.code;
  if (code) return `request failed: ${code}`;
  return `request failed: ${(e.cause?.message ?? e.message ?? String(err)).slice(0, 200)}`;
}
