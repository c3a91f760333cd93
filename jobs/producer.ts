/**
 * The domain's JobProducer port (domain/shared/deps.ts) over BullMQ: the
 * only place the domain's use cases (API and reconciler alike) add or retry
 * jobs, with the options and ids of jobs/queues.ts.
 */
import type { JobProducer } from '../domain/shared/deps.ts';
import { enqueueUndoneChunks } from './eval-runs/enqueue.ts';
import { jobIds, PURGE_DELETIONS_JOB, QUEUE_NAMES, webhookJobOptions, type jobOptions, type Queues } from './queues.ts';

export function createJobProducer(
  queues: Queues,
  options: ReturnType<typeof jobOptions>,
  webhooks: { attempts: number; backoffMs: number },
): JobProducer {
  const webhookOpts = webhookJobOptions(webhooks);
  return {
    async runStart(runId) {
      await queues.runStart.add(QUEUE_NAMES.runStart, { run_id: runId }, { ...options.runStart, jobId: jobIds.runStart(runId) });
    },
    async repairRunStart(runId) {
      const jobId = jobIds.runStart(runId);
      const state = await queues.runStart.getJobState(jobId);
      if (state === 'unknown') {
        await queues.runStart.add(QUEUE_NAMES.runStart, { run_id: runId }, { ...options.runStart, jobId });
        return true;
      }
      if (state === 'failed') {
        await (await queues.runStart.getJob(jobId))?.retry('failed');
        return true;
      }
      return false;
    },
    undoneChunks: (em, runId, opts) => enqueueUndoneChunks({ queues, jobOptions: options }, em, runId, opts),
    async webhookDeliveries(runId, ending, webhookIds) {
      if (webhookIds.length === 0) return;
      await queues.webhookDelivery.addBulk(
        webhookIds.map((id) => ({
          name: QUEUE_NAMES.webhookDelivery,
          data: { webhook_id: id, run_id: runId, ending },
          opts: { ...webhookOpts, jobId: jobIds.webhookDelivery(id, runId, ending) },
        })),
      );
    },
    async purgeDeletions(turn = 0) {
      // Postgres (the deletions table) says what is left; a failed job is retried by the next reconcile sweep's enqueue.
      await queues.reconcile.add(PURGE_DELETIONS_JOB, {}, { jobId: jobIds.purgeDeletions(turn), removeOnComplete: true, removeOnFail: true, attempts: 3, backoff: { type: 'exponential', delay: 1_000 } });
    },
  };
}
