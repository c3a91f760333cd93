/**
 * Keeping the results' monthly partitions (eval_run_items, eval_run_samples;
 * result-partitions.repository.ts):
 *
 * - ahead: the partitions of this month and the next PARTITION_MONTHS_AHEAD
 *   exist (there is no default partition: a run whose month had none could
 *   not record a result). Every process ensures them at start-up
 *   (createContainer) and the reconciler on every sweep.
 * - behind: a month's partitions are dropped once the month ended more than
 *   PARTITION_DROP_GRACE_MS ago and no run with an id in its range is left
 *   (retention, RESULT_RETENTION_DAYS, or DELETE /v1/eval-runs/{id} took them
 *   all): DETACH … CONCURRENTLY, then DROP. Dropping a month is a catalog
 *   change, not millions of deleted rows to vacuum; the `deletions` rows of
 *   its runs then find nothing left of them in those tables, and the purge
 *   deletes only their chunks. A month that still has a run keeps its
 *   partitions; its deleted runs' rows go by the purge's batches as before.
 *   Each step is one statement and re-done from the catalog's state on the
 *   next sweep: a detach that stopped half-way is finalized, a detached table
 *   whose drop did not happen is dropped.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from '../shared/deps.ts';
import {
  detachConcurrently,
  dropDetached,
  ensurePartitions,
  finalizeDetach,
  listPartitions,
  parsePartitionName,
  runsInRange,
  uuidv7Floor,
} from './result-partitions.repository.ts';

/** Months of partitions kept ahead of this one. */
export const PARTITION_MONTHS_AHEAD = 3;
/** How long after its month ended a partition may be dropped (a run id from a clock a little behind still finds its partition). */
export const PARTITION_DROP_GRACE_MS = 86_400_000;
/** The longest an ensure waits for the parent's lock (a concurrent detach); the next sweep tries again. */
const ENSURE_LOCK_TIMEOUT_MS = 5_000;

const monthStart = (ms: number) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
};
const addMonths = (ms: number, n: number) => {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1);
};

/** Creates this month's partitions and the next PARTITION_MONTHS_AHEAD months' where missing; how many were created. */
export async function ensureResultPartitions(em: EntityManager, now = Date.now()): Promise<number> {
  return ensurePartitions(em, monthStart(now), addMonths(now, PARTITION_MONTHS_AHEAD), ENSURE_LOCK_TIMEOUT_MS);
}

export interface DroppedPartitions {
  dropped: string[];
  /** partitions that could be dropped but a step failed (logged; the next sweep tries again) */
  failed: string[];
}

/**
 * Drops the monthly partitions whose month ended more than
 * PARTITION_DROP_GRACE_MS before `now` and no run of which is left. One
 * failure (a lock, the statement timeout, a role that does not own the
 * tables) is logged and leaves that partition to the next sweep and to the
 * purge's batches.
 */
export async function dropEmptyResultPartitions(em: EntityManager, log: Logger, now = Date.now()): Promise<DroppedPartitions> {
  const out: DroppedPartitions = { dropped: [], failed: [] };
  const emptyMonths = new Map<number, boolean>();
  for (const p of await listPartitions(em)) {
    const parsed = parsePartitionName(p.name);
    if (!parsed || parsed.monthEnd + PARTITION_DROP_GRACE_MS > now) continue;
    let empty = emptyMonths.get(parsed.monthStart);
    if (empty === undefined) {
      empty = !(await runsInRange(em, uuidv7Floor(parsed.monthStart), uuidv7Floor(parsed.monthEnd)));
      emptyMonths.set(parsed.monthStart, empty);
    }
    if (!empty) continue;
    try {
      if (p.parent !== null) {
        if (p.detach_pending) await finalizeDetach(em, p.parent, p.name);
        else await detachConcurrently(em, p.parent, p.name);
      }
      await dropDetached(em, p.name);
      out.dropped.push(p.name);
    } catch (err) {
      out.failed.push(p.name);
      log.warn({ partition: p.name, err: (err as Error).message }, 'could not drop a month of results whose runs are all deleted; the next sweep tries again');
    }
  }
  if (out.dropped.length) log.info({ dropped: out.dropped }, 'dropped the result partitions of months whose runs are all deleted');
  return out;
}

/** The reconciler's part: partitions ahead, then the empty months behind. A failure of either is logged, not thrown. */
export async function maintainResultPartitions(em: EntityManager, log: Logger, now = Date.now()): Promise<{ created: number } & DroppedPartitions> {
  let created = 0;
  try {
    created = await ensureResultPartitions(em, now);
    if (created > 0) log.info({ created }, 'created result partitions ahead');
  } catch (err) {
    log.error({ err: (err as Error).message }, 'could not create the result partitions of the months ahead');
  }
  try {
    return { created, ...(await dropEmptyResultPartitions(em, log, now)) };
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not look for empty result partitions');
    return { created, dropped: [], failed: [] };
  }
}
