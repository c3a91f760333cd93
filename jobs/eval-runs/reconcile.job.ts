/**
 * `reconcile`: Postgres is the truth, Redis only transport. Re-enqueues, with
 * the same deterministic ids, every pending run without a start job and every
 * running run's undone chunks without a live job. After a Redis FLUSHALL, a
 * crash between commit and enqueue, or a job that exhausted its attempts, this
 * is what finishes the run.
 */
import { jobIds, QUEUE_NAMES } from '../queues.ts';
import type { WorkerDeps } from '../registry.ts';
import { sql } from '../../server/sql.ts';
import { purgeExpiredIdempotencyKeys } from '../../routers/eval-runs/idempotency.service.ts';
import { purgeStaleUploads } from '../../routers/datasets/dataset-staging.service.ts';
import { purgeOldDeliveries } from '../webhooks/delivery-retention.ts';
import { sweepUnnotifiedRuns } from '../webhooks/run-notifications.ts';
import { enqueueUndoneChunks } from './enqueue.ts';

const BATCH = 500;

export async function reconcile(deps: WorkerDeps): Promise<{ pending: number; running: number; requeued: number }> {
  const { container } = deps;
  const em = container.orm.em.fork();
  let requeued = 0;

  const pending = await sql<{ id: string }>(
    em,
    `select id from eval_runs where status = 'pending' order by updated_at limit ?`,
    [BATCH],
  );
  for (const { id } of pending) {
    const jobId = jobIds.runStart(id);
    const state = await container.queues.runStart.getJobState(jobId);
    if (state === 'unknown') {
      await container.queues.runStart.add(QUEUE_NAMES.runStart, { run_id: id }, { ...container.jobOptions.runStart, jobId });
      requeued++;
    } else if (state === 'failed') {
      await (await container.queues.runStart.getJob(jobId))?.retry('failed');
      requeued++;
    }
  }

  const running = await sql<{ id: string }>(
    em,
    `select id from eval_runs where status = 'running' order by updated_at limit ?`,
    [BATCH],
  );
  for (const { id } of running) {
    requeued += await enqueueUndoneChunks(container, em, id, { repair: true });
  }
  const purged = await purgeExpiredIdempotencyKeys(em);
  if (purged > 0) deps.log.debug({ purged }, 'purged expired idempotency keys');
  const pruned = await purgeOldDeliveries(em, container.env.WEBHOOK_DELIVERY_RETENTION_DAYS);
  if (pruned > 0) deps.log.debug({ pruned }, 'deleted webhook deliveries past their retention');
  await sweepUnnotifiedRuns(container);
  await purgeStaleUploads(em, container.env.UPLOAD_STAGING_TTL_MS);
  if (requeued > 0) deps.log.info({ pending: pending.length, running: running.length, requeued }, 'reconciled');
  return { pending: pending.length, running: running.length, requeued };
}
