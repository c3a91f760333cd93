/**
 * Which processor serves which queue, with how many at once: the table that
 * server/workers.ts turns into BullMQ workers. Processors are thin: they parse
 * the payload, call the domain and decide the retry.
 */
import type { Job, WorkerOptions } from 'bullmq';
import type { Env } from '../domain/shared/deps.ts';
import type { ProcessorDeps } from './deps.ts';
import { processPurgeDeletions } from './eval-runs/purge-deletions.job.ts';
import { reconcile } from './eval-runs/reconcile.job.ts';
import { processRunChunk } from './eval-runs/run-chunk.job.ts';
import { processRunStart } from './eval-runs/run-start.job.ts';
import { processWebhookDelivery, webhookBackoff } from './webhooks/deliver-webhook.job.ts';
import { PURGE_DELETIONS_JOB, QUEUE_NAMES, type QueueName } from './queues.ts';

export interface Processor {
  queue: QueueName;
  process: (deps: ProcessorDeps, job: Job) => Promise<unknown>;
  concurrency: (env: Env) => number;
  settings?: WorkerOptions['settings'];
  /** Its failures are logged by the processor itself (and not retried by the reconciler). */
  logsOwnFailures?: boolean;
}

export const PROCESSORS: readonly Processor[] = [
  { queue: QUEUE_NAMES.runStart, process: processRunStart, concurrency: (env) => Math.max(1, Math.ceil(env.WORKER_CONCURRENCY / 2)) },
  { queue: QUEUE_NAMES.runChunk, process: processRunChunk, concurrency: (env) => env.WORKER_CONCURRENCY },
  // the same queue carries the purge of deleted runs (by job name): both are housekeeping, one at a time per process
  { queue: QUEUE_NAMES.reconcile, process: (deps, job) => (job.name === PURGE_DELETIONS_JOB ? processPurgeDeletions(deps, job) : reconcile(deps)), concurrency: () => 1 },
  {
    queue: QUEUE_NAMES.webhookDelivery,
    process: processWebhookDelivery,
    concurrency: (env) => env.WEBHOOK_CONCURRENCY,
    settings: { backoffStrategy: webhookBackoff },
    logsOwnFailures: true,
  },
];
