/**
 * `run chunk`: score one chunk of a run (domain/eval-runs/score-chunk.ts).
 * A malformed payload fails for good; anything else the domain throws is
 * retried by BullMQ with the queue's backoff.
 */
import type { Job } from 'bullmq';
import { scoreChunk, type ChunkOutcome } from '../../domain/eval-runs/score-chunk.ts';
import { parsePayload } from '../payload.ts';
import { runChunkPayload } from '../queues.ts';
import type { ProcessorDeps } from '../deps.ts';

export async function processRunChunk(deps: ProcessorDeps, job: Job): Promise<ChunkOutcome> {
  const { run_id, chunk_index } = parsePayload(runChunkPayload, job.data);
  return scoreChunk(deps, { runId: run_id, chunkIndex: chunk_index, attempts: job.attemptsMade + 1 });
}
