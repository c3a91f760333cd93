/**
 * `purge-deletions` (on the reconcile queue): deletes, a bounded batch at a
 * time, what deleted runs and datasets left (domain/eval-runs/run-deletion.service.ts).
 * One job runs at most PURGE_BATCHES_PER_JOB statements; with more left it
 * enqueues its continuation (the other turn's id: its own is still taken).
 * Should a continuation be refused (its id still held by a job another
 * process is finishing), the reconciler's next sweep enqueues the purge
 * again: the deletions table, not Redis, says what is left.
 */
import type { Job } from 'bullmq';
import type { WorkerDeps } from '../deps.ts';
import { purgeDeletions, type PurgeResult } from '../../domain/eval-runs/run-deletion.service.ts';
import { jobIds } from '../queues.ts';

export async function processPurgeDeletions(deps: WorkerDeps, job: Job): Promise<PurgeResult> {
  const result = await purgeDeletions(deps.container, deps.log);
  if (result.more) await deps.container.producer.purgeDeletions(job.id === jobIds.purgeDeletions(0) ? 1 : 0);
  return result;
}
