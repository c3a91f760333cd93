/**
 * Queue contracts in one place: names, payload schemas (ids only, never
 * secrets) and job options. Producers (API) and consumers (workers) both
 * import from here.
 */
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { z } from 'zod';

export const QUEUE_NAMES = {
  runStart: 'run-start',
  runChunk: 'run-chunk',
  reconcile: 'reconcile',
  webhookDelivery: 'webhook-delivery',
} as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

export const runStartPayload = z.object({ run_id: z.uuid() });
export type RunStartPayload = z.infer<typeof runStartPayload>;

export const runChunkPayload = z.object({ run_id: z.uuid(), chunk_index: z.int().min(0) });
export type RunChunkPayload = z.infer<typeof runChunkPayload>;

export const reconcilePayload = z.object({});

/** `ending`: the run's completed_at in epoch ms, which tells one ending of a retried run from the next. */
export const webhookDeliveryPayload = z.object({ webhook_id: z.uuid(), run_id: z.uuid(), ending: z.int().min(0) });
export type WebhookDeliveryPayload = z.infer<typeof webhookDeliveryPayload>;

/** Deterministic job ids: a re-enqueue of the same work is a no-op while the job exists. */
export const jobIds = {
  runStart: (runId: string) => runId,
  runChunk: (runId: string, chunkIndex: number) => `${runId}-${chunkIndex}`,
  webhookDelivery: (webhookId: string, runId: string, ending: number) => `${webhookId}-${runId}-${ending}`,
  purgeDeletions: (turn: 0 | 1) => `purge-deletions-${turn}`,
};

/** The purge of deleted runs' results rides on the reconcile queue (one at a time per process), under this job name. */
export const PURGE_DELETIONS_JOB = 'purge-deletions';

export interface JobTuning {
  chunkAttempts: number;
}

export function jobOptions(t: JobTuning): Record<'runStart' | 'runChunk', JobsOptions> {
  const common: JobsOptions = {
    // Completed jobs are forgotten so a deterministic id can be enqueued again
    // (retry, reconcile); Postgres, not Redis, remembers what was done.
    removeOnComplete: true,
    // Failed jobs stay a week for the board; the reconciler retries them.
    removeOnFail: { age: 7 * 24 * 3600 },
    backoff: { type: 'exponential', delay: 1_000 },
  };
  return {
    runStart: { ...common, attempts: 10 },
    runChunk: { ...common, attempts: t.chunkAttempts },
  };
}

/** Backoff type served by the webhook worker's strategy: exponential from `delay`, or the receiver's Retry-After. */
export const WEBHOOK_BACKOFF = 'webhook';

export function webhookJobOptions(t: { attempts: number; backoffMs: number }): JobsOptions {
  return {
    attempts: t.attempts,
    backoff: { type: WEBHOOK_BACKOFF, delay: t.backoffMs },
    // Postgres (webhook_deliveries) says what was delivered; a re-enqueue of a delivered event is a no-op there.
    removeOnComplete: true,
    // An exhausted delivery stays a week: its id then blocks a re-enqueue of the same event, and the board shows it.
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

export interface Queues {
  runStart: Queue<RunStartPayload>;
  runChunk: Queue<RunChunkPayload>;
  reconcile: Queue;
  webhookDelivery: Queue<WebhookDeliveryPayload>;
  all(): Queue[];
  close(): Promise<void>;
}

/** Producer-side queues (`prefix`: one for all, or each queue's own). The connection is the caller's: BullMQ does not close connections it is given. */
export function createQueues(connection: ConnectionOptions, prefix: string | ((queueName: QueueName) => string)): Queues {
  const p = (name: QueueName) => (typeof prefix === 'string' ? prefix : prefix(name));
  const runStart = new Queue<RunStartPayload>(QUEUE_NAMES.runStart, { connection, prefix: p(QUEUE_NAMES.runStart) });
  const runChunk = new Queue<RunChunkPayload>(QUEUE_NAMES.runChunk, { connection, prefix: p(QUEUE_NAMES.runChunk) });
  const reconcile = new Queue(QUEUE_NAMES.reconcile, { connection, prefix: p(QUEUE_NAMES.reconcile) });
  const webhookDelivery = new Queue<WebhookDeliveryPayload>(QUEUE_NAMES.webhookDelivery, { connection, prefix: p(QUEUE_NAMES.webhookDelivery) });
  const all = () => [runStart, runChunk, reconcile, webhookDelivery] as Queue[];
  return {
    runStart,
    runChunk,
    reconcile,
    webhookDelivery,
    all,
    close: async () => {
      await Promise.all(all().map((q) => q.close()));
    },
  };
}
