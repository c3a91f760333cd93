/** `reconcile`: the repeatable sweep that re-enqueues what Postgres says is unfinished (domain/eval-runs/reconcile.service.ts). */
import type { WorkerDeps } from '../deps.ts';
import { reconcileRuns, type ReconcileOptions, type ReconcileResult } from '../../domain/eval-runs/reconcile.service.ts';

export type { ReconcileOptions } from '../../domain/eval-runs/reconcile.service.ts';

export async function reconcile(deps: WorkerDeps, opts: ReconcileOptions = {}): Promise<ReconcileResult> {
  return reconcileRuns(deps.container, deps.log, opts);
}
