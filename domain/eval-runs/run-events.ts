/**
 * Side effects of a run ending (completed or failed), called after the commit
 * that ended it, once per ending. Keep it non-throwing: the run's truth is
 * already in Postgres; whatever runs here must be able to catch up later
 * (e.g. from a reconciler sweep) if this process dies first.
 */
import type { Deps } from '../shared/deps.ts';
import { notifyRunFinished } from '../webhooks/run-notifications.ts';

export async function onRunFinished(c: Deps, runId: string): Promise<void> {
  try {
    // completion side effects (webhooks, metrics) hook in here
    c.log.debug({ runId }, 'run finished');
    await notifyRunFinished(c, runId);
  } catch (err) {
    c.log.warn({ runId, err: (err as Error).message }, 'run-finished side effect failed; it will be retried by the reconciler');
  }
}
