/**
 * Deleting runs (DELETE /v1/eval-runs/{id}, retention) and what a deleted run
 * or dataset leaves behind. The request deletes the run's row only (one short
 * statement, so the answer comes at once and the run is gone for every read
 * from then on); its results, samples and chunks, and a deleted dataset's
 * items, are deleted by purgeDeletions in bounded batches, each batch one
 * autocommit statement of at most DELETION_BATCH_ROWS rows. The `deletions`
 * row written with the run's delete (a trigger, see run-deletion.repository.ts)
 * is the mark: it is deleted last, so a purge that dies half-way is resumed by
 * the next one (the purge job the request enqueues, or the reconciler's sweep,
 * which enqueues it while any deletion is left).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { isActiveRunStatus } from '../../entities/index.ts';
import { withDeadline } from '../shared/deadline.ts';
import type { Deps, Logger } from '../shared/deps.ts';
import { DomainError, notFound } from '../shared/errors.ts';
import {
  deleteBatch,
  deleteExpiredRuns,
  deleteFinishedRun,
  finishDeletion,
  isBeingDeleted,
  pendingDeletions,
  PURGE_ORDER,
  rowsLeft,
  runDeletionBlocker,
  type DeletionKind,
  type PurgeTarget,
} from './run-deletion.repository.ts';
import type { EvalRunDeletionDto } from './run-deletion.schema.ts';
import { maintainResultPartitions } from './result-partitions.service.ts';

/** How long a request waits on Redis to enqueue the purge; the reconciler enqueues it otherwise. */
const ENQUEUE_DEADLINE_MS = 2_000;
/** Batch statements one purge job runs at most (a job stays short: shutdown, stall detection); the next job goes on. */
export const PURGE_BATCHES_PER_JOB = 40;
/** Runs one retention sweep deletes at most (one statement); the next sweep takes the next ones. */
export const RETENTION_RUNS_PER_SWEEP = 500;

/**
 * Deletes the tenant's run: 202 `{id, status: 'deleting'}` at once, the
 * results in the background. Only a run that ended may be deleted (409
 * "cancel it first" for a pending or running one; 409 too while an active
 * run re-scores its samples). Deleting a run already being deleted answers the
 * same (idempotent); an unknown run, another tenant's, or one whose deletion
 * has finished is 404.
 */
export async function deleteEvalRun(deps: Deps, em: EntityManager, tenantId: string, log: Logger, runId: string): Promise<EvalRunDeletionDto> {
  // two tries: a run that ends between the delete and the look at why it was not deleted is deleted on the second
  for (let attempt = 0; ; attempt++) {
    const deleted = await deleteFinishedRun(em, tenantId, runId);
    if (deleted) {
      log.info({ runId }, 'run deleted; its results go in the background');
      await kickPurge(deps, log);
      return { id: runId, status: 'deleting' };
    }
    if (await isBeingDeleted(em, 'run', tenantId, runId)) return { id: runId, status: 'deleting' };
    const blocker = await runDeletionBlocker(em, tenantId, runId);
    if (!blocker) {
      // deleted by a concurrent request after this one's delete looked: that deletion may be over already
      if (await isBeingDeleted(em, 'run', tenantId, runId)) return { id: runId, status: 'deleting' };
      throw notFound('eval run', runId);
    }
    if (isActiveRunStatus(blocker.status)) {
      throw new DomainError('CONFLICT', `eval run ${runId} is ${blocker.status}; cancel it first (POST /v1/eval-runs/${runId}/cancel), then delete it`);
    }
    if (blocker.rescored_by !== null) {
      throw new DomainError('CONFLICT', `eval run ${runId} is being re-scored by run ${blocker.rescored_by}; cancel that run or wait for it to finish`);
    }
    if (attempt >= 1) throw new DomainError('CONFLICT', `eval run ${runId} changed while being deleted; try again`);
  }
}

/** Enqueues the purge job; bounded, and a failure only logged (the reconciler's sweep enqueues it while deletions are left). */
export async function kickPurge(deps: Deps, log: Logger): Promise<void> {
  try {
    await withDeadline(deps.producer.purgeDeletions(), ENQUEUE_DEADLINE_MS, 'enqueue');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not enqueue the purge of deleted runs; the reconciler will');
  }
}

export interface PurgeOptions {
  /** rows per batch statement (default DELETION_BATCH_ROWS) */
  batchRows?: number;
  /** batch statements at most (default PURGE_BATCHES_PER_JOB) */
  maxBatches?: number;
  /** called after every batch statement (tests count them) */
  onBatch?: (b: { kind: DeletionKind; id: string; table: PurgeTarget; rows: number }) => void;
}

export interface PurgeResult {
  batches: number;
  rows: number;
  /** deletions finished (their `deletions` row gone) */
  finished: number;
  /** stopped at maxBatches with deletions left */
  more: boolean;
}

/**
 * Works through the `deletions`, oldest first: for each, every table's rows of
 * the run (dataset) a keyset batch at a time, then a check that none is left
 * and the mark itself. Each statement commits on its own; stopping anywhere
 * (maxBatches, a crash) leaves the mark, and the next purge starts that
 * deletion's tables again from their first remaining row.
 */
export async function purgeDeletions(deps: Pick<Deps, 'orm' | 'env'> & Partial<Pick<Deps, 'faults'>>, log: Logger, opts: PurgeOptions = {}): Promise<PurgeResult> {
  const em = deps.orm.em.fork() as EntityManager;
  const batchRows = opts.batchRows ?? deps.env.DELETION_BATCH_ROWS;
  const maxBatches = opts.maxBatches ?? PURGE_BATCHES_PER_JOB;
  const result: PurgeResult = { batches: 0, rows: 0, finished: 0, more: false };
  const unfinished = new Set<string>();
  for (;;) {
    const page = (await pendingDeletions(em, 50 + unfinished.size)).filter((d) => !unfinished.has(`${d.kind}:${d.id}`));
    if (page.length === 0) break;
    for (const d of page) {
      for (const table of PURGE_ORDER[d.kind]) {
        let after: string | null = null;
        for (;;) {
          if (result.batches >= maxBatches) {
            result.more = true;
            if (result.rows > 0) log.info({ ...result }, 'purged rows of deleted runs and datasets; more to do');
            return result;
          }
          const { n, seen, last } = await deleteBatch(em, table, d.id, after, batchRows);
          result.batches++;
          result.rows += n;
          opts.onBatch?.({ kind: d.kind, id: d.id, table, rows: n });
          if (deps.faults && deps.faults.purgeDelayMs > 0) await sleep(deps.faults.purgeDelayMs);
          if (seen < batchRows) break;
          after = last;
        }
      }
      let left = false;
      for (const table of PURGE_ORDER[d.kind]) left ||= await rowsLeft(em, table, d.id);
      if (left) {
        // rows behind the cursor (cannot happen for a deleted run; kept for the next purge rather than looping here)
        unfinished.add(`${d.kind}:${d.id}`);
        log.warn({ kind: d.kind, id: d.id }, 'rows of a deletion were left after a full pass; the next purge takes them');
        continue;
      }
      await finishDeletion(em, d);
      result.finished++;
      log.info({ kind: d.kind, id: d.id }, 'deletion finished');
    }
  }
  return result;
}

/**
 * The reconciler's part: retention (finished runs that ended more than
 * RESULT_RETENTION_DAYS ago are deleted, RETENTION_RUNS_PER_SWEEP per sweep),
 * the results' monthly partitions (ahead, and dropping the months whose runs
 * are all gone: result-partitions.service.ts) and a purge job while any deletion is left (a crash, Redis away when a run
 * was deleted, a dataset or tenant deleted, retention).
 */
export async function sweepDeletions(
  deps: Deps,
  log: Logger,
  opts: { runsPerSweep?: number; now?: number } = {},
): Promise<{ expired: number; pending: boolean; partitions: { created: number; dropped: string[]; failed: string[] } }> {
  const em = deps.orm.em.fork() as EntityManager;
  let expired = 0;
  const days = deps.env.RESULT_RETENTION_DAYS;
  if (days !== undefined) {
    expired = (await deleteExpiredRuns(em, days, opts.runsPerSweep ?? RETENTION_RUNS_PER_SWEEP)).length;
    if (expired > 0) log.info({ expired, days }, 'deleted runs past their retention; their results go in the background');
  }
  // before the purge: a month whose runs are all gone is dropped whole, and the purge then finds none of its rows
  const partitions = await maintainResultPartitions(em, log, opts.now);
  const pending = (await pendingDeletions(em, 1)).length > 0;
  if (pending) await deps.producer.purgeDeletions();
  return { expired, pending, partitions };
}
