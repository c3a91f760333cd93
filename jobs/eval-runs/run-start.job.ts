/** `run start`: pending → running, cut the pinned items into chunks, enqueue them. */
import type { Job } from 'bullmq';
import { runStartPayload } from '../queues.ts';
import type { WorkerDeps } from '../deps.ts';
import { enqueueUndoneChunks } from './enqueue.ts';
import { onRunFinished } from '../../domain/eval-runs/run-events.ts';
import { startRun } from '../../domain/eval-runs/run-lifecycle.ts';
import { parsePayload } from '../payload.ts';

export async function processRunStart(deps: WorkerDeps, job: Job): Promise<{ chunks: number; queued: number }> {
  const { run_id } = parsePayload(runStartPayload, job.data);
  const em = deps.container.orm.em.fork();
  const { CHUNK_SIZE, JUDGE_CHUNK_SIZE } = deps.container.env;
  const started = await startRun(em, run_id, (type) => (type === 'llm_judge' ? JUDGE_CHUNK_SIZE : CHUNK_SIZE));
  if (started.completedEmpty) await onRunFinished(deps.container, run_id);
  if (!started.run || started.completedEmpty) return { chunks: 0, queued: 0 };
  if (started.run.status !== 'pending' && started.run.status !== 'running') return { chunks: 0, queued: 0 };
  const queued = await enqueueUndoneChunks(deps.container, em, run_id, { repair: false });
  deps.log.info({ runId: run_id, jobId: job.id, chunks: started.chunks, queued }, 'run started');
  return { chunks: started.chunks, queued };
}
