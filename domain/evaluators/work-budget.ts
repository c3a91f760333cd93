/**
 * Work accounting for one evaluation. Every evaluator states (before the work)
 * or counts (during it) the units it spends against the bound of its kind in
 * ./limits.ts. Two reasons to count rather than time: a refusal can happen
 * before any work is done, and tests can assert how much work was done, which a
 * loaded CI machine cannot make flaky.
 *
 * `share` < 1 is for evaluations on an event loop that also serves HTTP: work
 * beyond that share of a bound throws OffloadRequired, and the caller scores
 * the item again on a worker thread with the whole bound (./evaluator-pool.ts).
 */

/** The work is within its bound but too much for the caller's event loop: score the item on a worker thread. */
export class OffloadRequired extends Error {
  override name = 'OffloadRequired';
  constructor(readonly kind: string, readonly units: number) {
    super(`${kind}: ${units} units need a worker thread`);
  }
}

export class WorkBudget {
  /** Units charged so far, by kind (e.g. `levenshtein_cells`). */
  readonly used: Record<string, number> = {};

  /** `share` of each bound this budget may spend; 1 on a worker thread. */
  constructor(readonly share = 1) {}

  /**
   * Adds `units` of `kind` (before or during the work). Past `limit` in total
   * throws an Error whose message is `refusal()`; past `share × limit`, OffloadRequired.
   */
  charge(kind: string, units: number, limit: number, refusal: () => string): void {
    const total = (this.used[kind] ?? 0) + units;
    if (total > limit) throw new Error(refusal());
    if (total > limit * this.share) throw new OffloadRequired(kind, total);
    this.used[kind] = total;
  }

  /** Units of `kind` charged so far (0 when none). */
  of(kind: string): number {
    return this.used[kind] ?? 0;
  }
}
