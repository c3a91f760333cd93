/**
 * Fault suite, data: one poison item that its evaluator always throws on
 * (numeric_diff with a non-numeric output). The run still ends `completed`,
 * that item is `error` with the reason, and every other item is scored once.
 */
import { describe, expect, it } from 'vitest';
import { sql } from '../../server/sql.ts';
import { makeEval } from '../helpers/factories.ts';
import { report, Rig, seconds } from './rig.ts';

describe('fault: poison item', () => {
  it('an item the evaluator always throws on ends `error`; the run completes', async ({ onTestFailed }) => {
    const rig = await Rig.start();
    onTestFailed(() => rig.dumpLogs());
    try {
      const n = 1_000;
      const poison = 437;
      const data = Array.from({ length: n }, (_, i) => ({
        input: `how much is ${i} + 1?`,
        expected_output: String(i + 1),
        output: i === poison ? 'a lot, I think' : String(i + 1),
      }));
      const ds = await rig.dataset(n, data);
      const ev = await makeEval(rig.container, rig.tenant.id, { type: 'numeric_diff', tolerance: 0.001 });
      const api = await rig.startApi();
      await Promise.all([rig.startWorker(), rig.startWorker()]);
      const sched = await rig.schedule(api, ds, { evalVersionId: ev.evalVersionId });
      expect(sched.value.status).toBe(202);
      const runId = sched.value.body.id as string;
      const startedAt = Date.now();

      const done = await rig.waitEnd(runId);
      expect(done).toMatchObject({ status: 'completed', completed_count: n, passed_count: n - 1, failed_count: 0, error_count: 1 });
      const { lost, duplicates } = await rig.assertExactlyOnce(runId, n);
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
        items: n,
        lost,
        duplicates,
      });
    } finally {
      await rig.close();
    }
  });
});
