/**
 * The run lifecycle's steps as the workers and the services take them: start
 * (pending → running, chunks cut), chunk bookkeeping, recording results,
 * ending a run, re-opening one for a retry. The statements are in
 * eval-run.repository.ts; what needs more than one of them in a transaction,
 * and the rules on which state allows what, is here.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { isActiveRunStatus } from '../../entities/index.ts';
import { DomainError, notFound } from '../shared/errors.ts';
import {
  completeEmptyRun,
  countChunks,
  findRunById,
  insertChunks,
  lockRunForRetry,
  lockRunForStart,
  markRunRunning,
  reopenErrorItems,
  type EvalRunRow,
  type RunForStart,
} from './eval-run.repository.ts';

export {
  beginChunk,
  chunkCrashes,
  endChunk,
  failChunk,
  failRun,
  loadChunkWork,
  NO_SPEND,
  recordResults,
  reopenIncompleteChunks,
  storableText,
  undoneChunks,
  type ChunkContext,
  type ChunkWork,
  type ItemResult,
  type ItemToScore,
  type RecordOutcome,
  type RunForStart,
  type Spend,
} from './eval-run.repository.ts';

/**
 * Moves a pending run to running and cuts its pinned items into chunks, in one
 * transaction. Idempotent: a run already running keeps its chunks. A run over
 * no items completes right here (`completedEmpty`).
 */
export async function startRun(
  em: EntityManager,
  runId: string,
  chunkSizeFor: number | ((evaluatorType: string, generates: boolean) => number),
): Promise<{ run: RunForStart | null; chunks: number; completedEmpty: boolean }> {
  return em.transactional(async (tx) => {
    const run = await lockRunForStart(tx, runId);
    if (!run || !isActiveRunStatus(run.status)) return { run: run ?? null, chunks: 0, completedEmpty: false };
    if (run.item_count === 0) {
      await completeEmptyRun(tx, runId);
      return { run, chunks: 0, completedEmpty: true };
    }
    if (run.status === 'pending') await markRunRunning(tx, runId);
    const existing = await countChunks(tx, runId);
    if (existing > 0) return { run, chunks: existing, completedEmpty: false };
    const chunkSize = typeof chunkSizeFor === 'number' ? chunkSizeFor : chunkSizeFor(run.evaluator_type, run.generates);
    return { run, chunks: await insertChunks(tx, runId, run, chunkSize), completedEmpty: false };
  });
}

/**
 * Re-opens a finished run for its `error` items and for the items it never
 * scored (a canceled run): deletes the error results and takes exactly them
 * off the counters, re-opens every chunk that held an error or lacks a result
 * for any of its items (a chunk in flight at a cancel, or one marked done
 * without its results by an older version), clears their crash counts (the
 * retry is the tenant's explicit request to try again) and sets the run
 * running again. Passed and failed results stay, so every item still ends
 * with exactly one result.
 */
export async function reopenForRetry(em: EntityManager, tenantId: string, runId: string): Promise<{ run: EvalRunRow; removed: number }> {
  return em.transactional(async (tx) => {
    const current = await lockRunForRetry(tx, tenantId, runId);
    if (!current) throw notFound('eval run', runId);
    if (isActiveRunStatus(current.status)) {
      throw new DomainError('CONFLICT', `eval run ${runId} is still ${current.status}; retry it once it has finished`);
    }
    if (current.error_count === 0 && current.completed_count >= current.item_count) {
      throw new DomainError('CONFLICT', `eval run ${runId} has no error items to retry`);
    }
    const removed = await reopenErrorItems(tx, tenantId, runId);
    const run = await findRunById(tx, runId);
    return { run: run as EvalRunRow, removed };
  });
}
