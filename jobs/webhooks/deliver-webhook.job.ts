/**
 * `webhook delivery`: POSTs one run ending to one webhook, signed, and
 * records the attempt in webhook_deliveries whatever its outcome. A non-2xx
 * answer, a timeout or a refused connection throws, and BullMQ retries with
 * `webhookBackoff` until WEBHOOK_ATTEMPTS are used up. The payload holds ids
 * only: URL and secret are read from Postgres at each attempt, so a deleted
 * webhook stops receiving at once.
 */
import type { BackoffOptions, Job, MinimalJob } from 'bullmq';
import { v7 as uuidv7 } from 'uuid';
import type { WebhookEventType } from '../../entities/index.ts';
import { EVAL_RUN_COLUMNS, toEvalRunDto, type EvalRunRow } from '../../domain/eval-runs/eval-run.mapper.ts';
import { sql } from '../../domain/shared/sql.ts';
import { parsePayload } from '../payload.ts';
import { webhookDeliveryPayload } from '../queues.ts';
import type { WorkerDeps } from '../deps.ts';
import { ENDING_SQL } from '../../domain/webhooks/run-notifications.ts';
import { postWebhook } from '../../domain/webhooks/webhook-http.ts';
import { signWebhook } from '../../domain/webhooks/webhook-signature.ts';
import { PrivateTargetError } from '../../domain/webhooks/webhook-target.ts';

/** A receiver may ask for a pause, but not for one that outlives any reasonable incident. */
const MAX_RETRY_AFTER_MS = 3_600_000;
const MAX_ERROR_LENGTH = 500;

/** A failed attempt; `retryAfterMs` is the receiver's Retry-After, when it sent one. */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  constructor(
    message: string,
    public readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

export interface DeliveryOutcome {
  skipped?: string;
  status?: number;
}

export async function processWebhookDelivery(deps: WorkerDeps, job: Job): Promise<DeliveryOutcome> {
  const { webhook_id, run_id, ending } = parsePayload(webhookDeliveryPayload, job.data);
  const { env } = deps.container;
  const em = deps.container.orm.em.fork();

  const [hook] = await sql<{ tenant_id: string; url: string; secret: string }>(em, 'select tenant_id, url, secret from webhooks where id = ?', [webhook_id]);
  if (!hook) return { skipped: 'webhook deleted' };
  // Scoped by the webhook's tenant: a payload naming another tenant's run finds nothing.
  const [run] = await sql<EvalRunRow & { ending: string; delivered: boolean }>(
    em,
    `select ${EVAL_RUN_COLUMNS}, ${ENDING_SQL} as ending,
            exists (select 1 from webhook_deliveries d
                     where d.webhook_id = ? and d.run_id = r.id and d.run_ended_at = r.completed_at
                       and d.status_code between 200 and 299) as delivered
       from eval_runs r where r.id = ? and r.tenant_id = ?`,
    [webhook_id, run_id, hook.tenant_id],
  );
  if (!run) return { skipped: 'run deleted' };
  if ((run.status !== 'completed' && run.status !== 'failed') || Number(run.ending) !== ending) {
    // A retry re-opened the run after this ending; its next ending is delivered instead.
    return { skipped: 'superseded by a later ending of the run' };
  }
  if (run.delivered) return { skipped: 'already delivered' };

  const type: WebhookEventType = run.status === 'completed' ? 'eval_run.completed' : 'eval_run.failed';
  const body = JSON.stringify({ type, run: toEvalRunDto(run) });
  const timestamp = Math.floor(Date.now() / 1000);
  const attempt = job.attemptsMade + 1;
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
      failure = new DeliveryError(`receiver answered ${status}${hint}`, parseRetryAfter(res.retryAfter));
    }
  } catch (err) {
    failure = new DeliveryError(describeFetchError(err, env.WEBHOOK_TIMEOUT_MS), null);
  }
  const durationMs = Math.round(performance.now() - started);

  await sql(
    em,
    `insert into webhook_deliveries (id, tenant_id, webhook_id, run_id, event_type, run_ended_at, attempt, status_code, error, duration_ms, delivered_at)
     values (?, ?, ?, ?, ?,
             -- the exact timestamptz (a JS Date would drop its microseconds); the key if a retry re-opened the run meanwhile
             coalesce((select completed_at from eval_runs where id = ? and ${ENDING_SQL} = ?), to_timestamp(?::float8 / 1000)),
             ?, ?, ?, ?, now())`,
    [uuidv7(), hook.tenant_id, webhook_id, run_id, type, run_id, ending, ending, attempt, status, failure?.message.slice(0, MAX_ERROR_LENGTH) ?? null, durationMs],
  );
  if (failure) {
    const last = attempt >= (job.opts.attempts ?? 1);
    deps.log[last ? 'error' : 'warn']({ webhookId: webhook_id, runId: run_id, attempt, status, err: failure.message }, last ? 'webhook delivery gave up' : 'webhook delivery failed; will retry');
    throw failure;
  }
  return { status: status as number };
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
