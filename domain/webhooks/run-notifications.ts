/**
 * From a run's ending to queued webhook deliveries, durably: `notified_at`
 * stays null until the deliveries of the current ending are enqueued, so a
 * process that dies between the commit that ended the run and the enqueue
 * leaves the run for the reconciler's sweep. Enqueueing twice is harmless:
 * job ids are deterministic per (webhook, run, ending), and a delivery job
 * whose event Postgres already records as delivered does nothing.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Deps } from '../shared/deps.ts';
import { withDeadline } from '../shared/deadline.ts';
import { markRunNotified, unnotifiedEnding, unnotifiedRunIds } from '../eval-runs/eval-run.repository.ts';
import { webhookIdsOfTenant } from './webhook.repository.ts';

const ENQUEUE_TIMEOUT_MS = 2_000;
const SWEEP_BATCH = 500;

/**
 * Enqueues one delivery per webhook of the run's tenant for the run's current
 * ending, then marks the run notified. A no-op for a run that is not finished
 * or already notified. Returns how many deliveries were enqueued.
 */
export async function notifyRunFinished(c: Deps, runId: string, em: EntityManager = c.orm.em.fork()): Promise<number> {
  const run = await unnotifiedEnding(em, runId);
  if (!run) return 0;
  const ending = Number(run.ending);
  const hooks = await webhookIdsOfTenant(em, run.tenant_id);
  if (hooks.length > 0) {
    await withDeadline(c.producer.webhookDeliveries(runId, ending, hooks), ENQUEUE_TIMEOUT_MS, 'enqueue');
  }
  await markRunNotified(em, runId, ending);
  return hooks.length;
}

/**
 * The reconciler's catch-up: finished runs whose deliveries were never
 * enqueued (crash, Redis away).
 */
export async function sweepUnnotifiedRuns(c: Deps): Promise<{ runs: number; enqueued: number }> {
  const em = c.orm.em.fork();
  const ids = await unnotifiedRunIds(em, SWEEP_BATCH);
  let enqueued = 0;
  for (const id of ids) {
    try {
      enqueued += await notifyRunFinished(c, id, em);
    } catch (err) {
      // Almost always Redis being away: one line, and the next sweep starts over.
      c.log.warn({ runId: id, err: (err as Error).message }, 'could not enqueue webhook deliveries; the next sweep retries');
      break;
    }
  }
  if (ids.length > 0) c.log.info({ runs: ids.length, enqueued }, 'swept finished runs for webhook deliveries');
  return { runs: ids.length, enqueued };
}
