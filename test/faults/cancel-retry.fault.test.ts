/**
 * Fault suite, run lifecycle: a run canceled mid-run while a worker holding
 * chunks is SIGKILLed, then retried. The retry must score exactly what the
 * canceled run had not scored, and the run must end `completed` with every
 * item scored exactly once (the failure this guards against: a chunk that
 * lands after the cancel is marked done without its results, and the retried
 * run stays `running` forever).
 */
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { items } from '../helpers/factories.ts';
import { waitFor } from '../helpers/stack.ts';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

describe('fault: cancel, SIGKILL, retry', () => {
  faultTest('cancel mid-run, SIGKILL a worker holding chunks, retry: the run ends, every item exactly once', async (rig) => {
    const n = 1_500;
    const slow = { EVALGATE_FAULT: 'chunk-delay-ms=60' };
    const { api, workers, runId } = await rig.startRun(await rig.dataset(n, items(n, (i) => i % 4 !== 0)), { workers: [slow, slow] });
    const victim = workers[0]!;
    await rig.waitProgress(runId, 0.3);
    const active = await rig.activeChunks();
    // Both workers run 2 chunks at a time: with 3 or more active, the victim holds at least one.
    expect(active).toBeGreaterThanOrEqual(3);

    const cancel = await rig.runAction(api, runId, 'cancel');
    expect(cancel.value.status).toBe(202);
    expect(cancel.value.body).toMatchObject({ status: 'failed', error_message: 'canceled' });
    victim.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');

    // The survivor's chunks that were in flight at the cancel land (recording nothing): the count stops moving.
    let last = -1;
    const atCancel = await waitFor(
      async () => {
        const r = await rig.run(runId);
        const stable = r.completed_count === last && (await rig.activeChunks()) <= 2; // at most the victim's, now stalled
        last = r.completed_count;
        return stable ? r : null;
      },
      { timeoutMs: 30_000, intervalMs: 300, what: 'the canceled run to settle' },
    );
    expect(atCancel.status).toBe('failed');
    expect(atCancel.completed_count).toBeLessThan(n);
    const [settled] = await sql<{ results: number; done_without_results: number }>(
      rig.em,
      `select (select count(*)::int from eval_run_items where run_id = ?) as results,
              (select count(*)::int from eval_run_chunks c
                where c.run_id = ? and c.done_at is not null
                  and c.item_count > (select count(*) from eval_run_items x where x.run_id = c.run_id and x.item_id between c.first_item_id and c.last_item_id)
              ) as done_without_results`,
      [runId, runId],
    );
    expect(settled).toEqual({ results: atCancel.completed_count, done_without_results: 0 });

    const retryAt = Date.now();
    const retry = await rig.runAction(api, runId, 'retry');
    expect(retry.value.status, JSON.stringify(retry.value.body)).toBe(202);
    expect(retry.value.body.status).toBe('running');
    const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: 1_125, failed_count: 375, error_count: 0 });
    report('cancel mid-run, SIGKILL a worker, retry', {
      canceled_at_pct: Math.round((atCancel.completed_count / n) * 100),
      chunks_active_at_cancel: active,
      done_chunks_without_results: settled?.done_without_results ?? -1,
      retry_to_completed_s: seconds((done.completed_ms ?? 0) - retryAt),
      ...tally,
    });
  });
});
