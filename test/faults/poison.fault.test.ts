/**
 * Fault suite, data: one poison item that its evaluator always throws on
 * (numeric_diff with a non-numeric output). The run still ends `completed`,
 * that item is `error` with the reason, and every other item is scored once.
 */
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { makeEval } from '../helpers/factories.ts';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

describe('fault: poison item', () => {
  faultTest('an item the evaluator always throws on ends `error`; the run completes', async (rig) => {
    const n = 1_000;
    const poison = 437;
    const data = Array.from({ length: n }, (_, i) => ({
      input: `how much is ${i} + 1?`,
      expected_output: String(i + 1),
      output: i === poison ? 'a lot, I think' : String(i + 1),
    }));
    const ds = await rig.dataset(n, data);
    const ev = await makeEval(rig.container, rig.tenant.id, { type: 'numeric_diff', tolerance: 0.001 });
    const { runId } = await rig.startRun(ds, { workers: [{}, {}], evalVersionId: ev.evalVersionId });
    const startedAt = Date.now();

    const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n - 1, failed_count: 0, error_count: 1 });
    const errors = await sql<{ output: unknown; error: string; attempts: number }>(
      rig.em,
      `select i.output, r.error, r.attempts from eval_run_items r join dataset_items i on i.id = r.item_id
        where r.run_id = ? and r.status = 'error'`,
      [runId],
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]?.output).toBe('a lot, I think');
    expect(errors[0]?.error).toMatch(/number/i);
    // The item error is the item's result, not a job failure: its chunk ran once.
    expect(errors[0]?.attempts).toBe(1);
    report('poison item (evaluator always throws)', {
      run_status: done.status,
      error_items: 1,
      run_s: seconds((done.completed_ms ?? 0) - startedAt),
      ...tally,
    });
  });
});
