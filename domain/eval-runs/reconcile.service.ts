/**
 * The reconciler's sweep: Postgres is the truth, Redis only transport.
 * Re-enqueues, with the same deterministic ids, every pending run without a
 * start job and every running run's undone chunks without a live job. After
 * a Redis FLUSHALL, a crash between commit and enqueue, or a job that
 * exhausted its attempts, this is what finishes the run.
 *
 * The sweep must reach every pending and running run however many there are,
 * and however many of them are stuck: a fixed `limit 500 order by updated_at`
 * would show the same 500 stuck runs (their updated_at never moves) to every
 * sweep and never the runs behind them. So the sweep walks the active runs in
 * id order, a keyset page (`batch`) at a time, from a cursor kept in Postgres
 * (reconcile_cursors), wrapping around to the first run once; it stops after
 * `budget` runs (RECONCILE_SWEEP_RUNS) and saves where it stopped, so the next
 * sweep (any worker process's) goes on from there. Every run is thus visited
 * within ⌈active runs / budget⌉ sweeps, each sweep's work and memory bounded.
 *
 * Then the housekeeping that rides on the same schedule: expired idempotency
 * keys, webhook deliveries past retention, finished runs whose webhooks were
 * never enqueued, stale upload staging, runs past RESULT_RETENTION_DAYS and
 * resuming unfinished deletions (run-deletion.service.ts).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { purgeStaleUploads } from '../datasets/dataset-staging.service.ts';
import type { Deps, Logger } from '../shared/deps.ts';
import { purgeOldDeliveries } from '../webhooks/delivery-retention.ts';
import { sweepUnnotifiedRuns } from '../webhooks/run-notifications.ts';
import { sweepDeletions } from './run-deletion.service.ts';
import { activeRunsPage, purgeExpiredIdempotencyKeys, readReconcileCursor, reopenIncompleteChunks, saveReconcileCursor } from './eval-run.repository.ts';

const BATCH = 500;
const CURSOR = 'active-runs';

export interface ReconcileOptions {
  /** Runs per keyset page (tests make it small to cross many pages with few runs). */
  batch?: number;
  /** Runs visited per sweep at most (default RECONCILE_SWEEP_RUNS). */
  budget?: number;
}

export interface ReconcileResult {
  pending: number;
  running: number;
  requeued: number;
  reopened: number;
  /** the sweep reached the end of the id order (the next one starts from the first run) */
  wrapped: boolean;
}

export async function reconcileRuns(deps: Deps, log: Logger, opts: ReconcileOptions = {}): Promise<ReconcileResult> {
  const em = deps.orm.em.fork() as EntityManager;
  const batch = opts.batch ?? BATCH;
  const budget = opts.budget ?? deps.env.RECONCILE_SWEEP_RUNS;
  let requeued = 0;
  let reopened = 0;
  let pending = 0;
  let running = 0;

  const start = await readReconcileCursor(em, CURSOR);
  let after = start;
  let wrapped = start === null;
  let visited = 0;
  let last: string | null = start;
  for (;;) {
    const left = budget - visited;
    if (left <= 0) break;
    // the second lap stops where the first began
    const page = await activeRunsPage(em, after, wrapped ? start : null, Math.min(batch, left));
    const lastOfPage = page[page.length - 1];
    if (lastOfPage === undefined) {
      // The end of the id order: go round to the first run once, up to where this sweep began.
      if (wrapped) {
        last = null;
        break;
      }
      wrapped = true;
      after = null;
      continue;
    }
    for (const run of page) {
      if (run.status === 'pending') {
        pending++;
        if (await deps.producer.repairRunStart(run.id)) requeued++;
      } else {
        running++;
        if (run.orphaned) reopened += await reopenIncompleteChunks(em, run.id);
        requeued += await deps.producer.undoneChunks(em, run.id, { repair: true });
      }
    }
    visited += page.length;
    after = lastOfPage.id;
    last = after;
  }
  await saveReconcileCursor(em, CURSOR, last);

  const purged = await purgeExpiredIdempotencyKeys(em);
  if (purged > 0) log.debug({ purged }, 'purged expired idempotency keys');
  const pruned = await purgeOldDeliveries(em, deps.env.WEBHOOK_DELIVERY_RETENTION_DAYS);
  if (pruned > 0) log.debug({ pruned }, 'deleted webhook deliveries past their retention');
  await sweepUnnotifiedRuns(deps);
  await purgeStaleUploads(em, deps.env.UPLOAD_STAGING_TTL_MS);
  // retention (RESULT_RETENTION_DAYS), and the purge job while deleted runs' or datasets' rows are left
  await sweepDeletions(deps, log);
  if (requeued > 0 || reopened > 0) log.info({ pending, running, requeued, reopened }, 'reconciled');
  if (reopened > 0) log.warn({ reopened }, 'reopened done chunks that lacked results');
  return { pending, running, requeued, reopened, wrapped: last === null };
}
