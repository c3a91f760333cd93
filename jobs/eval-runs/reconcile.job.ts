/**
 * `reconcile`: Postgres is the truth, Redis only transport. Re-enqueues, with
 * the same deterministic ids, every pending run without a start job and every
 * running run's undone chunks without a live job. After a Redis FLUSHALL, a
 * crash between commit and enqueue, or a job that exhausted its attempts, this
 * is what finishes the run.
 *
 * The sweep must reach every pending and running run however many there are,
 * and however many of them are stuck: a fixed `limit 500 order by updated_at`
 * showed the same 500 stuck runs (their updated_at never moves) to every
 * sweep and never the runs behind them. So the sweep walks the active runs in
 * id order, a keyset page (`batch`) at a time, from a cursor kept in Postgres
 * (reconcile_cursors), wrapping around to the first run once; it stops after
 * `budget` runs (RECONCILE_SWEEP_RUNS) and saves where it stopped, so the next
 * sweep (any worker process's) goes on from there. Every run is thus visited
 * within ⌈active runs / budget⌉ sweeps, each sweep's work and memory bounded.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { jobIds, QUEUE_NAMES } from '../queues.ts';
import type { WorkerDeps } from '../deps.ts';
import { sql } from '../../domain/shared/sql.ts';
import { purgeExpiredIdempotencyKeys } from '../../domain/eval-runs/idempotency.service.ts';
import { purgeStaleUploads } from '../../domain/datasets/dataset-staging.service.ts';
import { purgeOldDeliveries } from '../../domain/webhooks/delivery-retention.ts';
import { sweepUnnotifiedRuns } from '../../domain/webhooks/run-notifications.ts';
import { enqueueUndoneChunks } from './enqueue.ts';
import { reopenIncompleteChunks } from '../../domain/eval-runs/run-lifecycle.ts';

const BATCH = 500;
const CURSOR = 'active-runs';

export interface ReconcileOptions {
  /** Runs per keyset page (tests make it small to cross many pages with few runs). */
  batch?: number;
  /** Runs visited per sweep at most (default RECONCILE_SWEEP_RUNS). */
  budget?: number;
}

interface ActiveRun {
  id: string;
  status: 'pending' | 'running';
  /** running, no undone chunk and fewer results than items: nothing would ever finish it */
  orphaned: boolean;
}

export async function reconcile(
  deps: WorkerDeps,
  opts: ReconcileOptions = {},
): Promise<{ pending: number; running: number; requeued: number; reopened: number; wrapped: boolean }> {
  const { container } = deps;
  const em = container.orm.em.fork();
  const batch = opts.batch ?? BATCH;
  const budget = opts.budget ?? container.env.RECONCILE_SWEEP_RUNS;
  let requeued = 0;
  let reopened = 0;
  let pending = 0;
  let running = 0;

  const start = await readCursor(em);
  let after = start;
  let wrapped = start === null;
  let visited = 0;
  let last: string | null = start;
  for (;;) {
    const left = budget - visited;
    if (left <= 0) break;
    const page = await activeRunsPage(em, after, wrapped ? start : null, Math.min(batch, left));
    if (page.length === 0) {
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
        requeued += await repairPending(deps, run.id);
      } else {
        running++;
        if (run.orphaned) reopened += await reopenIncompleteChunks(em, run.id);
        requeued += await enqueueUndoneChunks(container, em, run.id, { repair: true });
      }
    }
    visited += page.length;
    after = (page[page.length - 1] as ActiveRun).id;
    last = after;
  }
  await saveCursor(em, last);

  const purged = await purgeExpiredIdempotencyKeys(em);
  if (purged > 0) deps.log.debug({ purged }, 'purged expired idempotency keys');
  const pruned = await purgeOldDeliveries(em, container.env.WEBHOOK_DELIVERY_RETENTION_DAYS);
  if (pruned > 0) deps.log.debug({ pruned }, 'deleted webhook deliveries past their retention');
  await sweepUnnotifiedRuns(container);
  await purgeStaleUploads(em, container.env.UPLOAD_STAGING_TTL_MS);
  if (requeued > 0 || reopened > 0) deps.log.info({ pending, running, requeued, reopened }, 'reconciled');
  if (reopened > 0) deps.log.warn({ reopened }, 'reopened done chunks that lacked results');
  return { pending, running, requeued, reopened, wrapped: last === null };
}

/**
 * The next page of pending and running runs after `after` (from the first
 * when null), and before or at `upTo` when given (the second lap of a sweep
 * stops where its first lap began). Served by eval_runs_active_id_idx.
 */
async function activeRunsPage(em: EntityManager, after: string | null, upTo: string | null, limit: number): Promise<ActiveRun[]> {
  const where = [`r.status in ('pending', 'running')`];
  const params: unknown[] = [];
  if (after !== null) {
    where.push('r.id > ?');
    params.push(after);
  }
  if (upTo !== null) {
    where.push('r.id <= ?');
    params.push(upTo);
  }
  params.push(limit);
  return sql<ActiveRun>(
    em,
    `select r.id, r.status,
            (r.status = 'running' and r.completed_count < r.item_count
             and not exists (select 1 from eval_run_chunks c where c.run_id = r.id and c.done_at is null)) as orphaned
       from eval_runs r
      where ${where.join(' and ')}
      order by r.id
      limit ?`,
    params,
  );
}

async function repairPending(deps: WorkerDeps, runId: string): Promise<number> {
  const { queues, jobOptions } = deps.container;
  const jobId = jobIds.runStart(runId);
  const state = await queues.runStart.getJobState(jobId);
  if (state === 'unknown') {
    await queues.runStart.add(QUEUE_NAMES.runStart, { run_id: runId }, { ...jobOptions.runStart, jobId });
    return 1;
  }
  if (state === 'failed') {
    await (await queues.runStart.getJob(jobId))?.retry('failed');
    return 1;
  }
  return 0;
}

async function readCursor(em: EntityManager): Promise<string | null> {
  const [row] = await sql<{ after_id: string | null }>(em, 'select after_id from reconcile_cursors where name = ?', [CURSOR]);
  return row?.after_id ?? null;
}

async function saveCursor(em: EntityManager, afterId: string | null): Promise<void> {
  await sql(
    em,
    `insert into reconcile_cursors (name, after_id, updated_at) values (?, ?, now())
     on conflict (name) do update set after_id = excluded.after_id, updated_at = now()`,
    [CURSOR, afterId],
  );
}
