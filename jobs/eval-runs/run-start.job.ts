/** `run start`: pending → running, cut the pinned items into chunks, enqueue them (startEvalRun); BullMQ retries what throws. */
import type { Job } from 'bullmq';
import { runStartPayload } from '../queues.ts';
import type { WorkerDeps } from '../deps.ts';
import { startEvalRun } from '../../domain/eval-runs/eval-run.service.ts';
import { parsePayload } from '../payload.ts';

export async function processRunStart(deps: WorkerDeps, job: Job): Promise<{ chunks: number; queued: number }> {
  const { run_id } = parsePayload(runStartPayload, job.data);
  const { started, chunks, queued } = await startEvalRun(deps.container, run_id);
  if (started) deps.log.info({ runId: run_id, jobId: job.id, chunks, queued }, 'run started');
  return { chunks, queued };
}
