import type { EntityManager } from '@mikro-orm/postgresql';
import { jobIds, QUEUE_NAMES, type Queues } from '../queues.ts';
import type { jobOptions } from '../queues.ts';
import { undoneChunks } from '../../domain/eval-runs/eval-run.repository.ts';

const PAGE = 1_000;
/** BullMQ's largest priority (2^21 − 1). */
const PRIORITY_LIMIT = 2_097_151;

/**
 * Enqueues every undone chunk of a run, a page at a time (bounded memory for
 * any run size), with deterministic ids. With `repair`, a chunk whose job
 * exists is left alone unless that job has failed, which is retried; this is
 * the reconciler's and retry's path. Returns how many jobs were (re)queued.
 */
export async function enqueueUndoneChunks(
  deps: { queues: Queues; jobOptions: ReturnType<typeof jobOptions> },
  em: EntityManager,
  runId: string,
  opts: { repair: boolean },
): Promise<number> {
  let after = -1;
  let queued = 0;
  for (;;) {
    const page = await undoneChunks(em, runId, after, PAGE);
    const lastOfPage = page[page.length - 1];
    if (lastOfPage === undefined) return queued;
    after = lastOfPage;
    let toAdd = page;
    if (opts.repair) {
      toAdd = [];
      for (const chunkIndex of page) {
        const id = jobIds.runChunk(runId, chunkIndex);
        const state = await deps.queues.runChunk.getJobState(id);
        if (state === 'unknown') toAdd.push(chunkIndex);
        else if (state === 'failed') {
          const job = await deps.queues.runChunk.getJob(id);
          if (job) {
            await job.retry('failed');
            queued++;
          }
        }
      }
    }
    if (toAdd.length > 0) {
      await deps.queues.runChunk.addBulk(
        toAdd.map((chunkIndex) => ({
          name: QUEUE_NAMES.runChunk,
          data: { run_id: runId, chunk_index: chunkIndex },
          // Chunk k of every run shares priority k+1: a small run's first chunks go ahead of a huge
          // run's thousandth, so one tenant's big run cannot starve another's small one.
          opts: { ...deps.jobOptions.runChunk, jobId: jobIds.runChunk(runId, chunkIndex), priority: Math.min(chunkIndex + 1, PRIORITY_LIMIT) },
        })),
      );
      queued += toAdd.length;
    }
  }
}
