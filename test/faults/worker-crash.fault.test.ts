/**
 * Fault suite, workers: a worker SIGKILLed at ~10/50/90 % of a run while
 * another keeps working, and a worker SIGTERMed mid-run (graceful). Each test
 * has its own disposable PostgreSQL and redis-server.
 */
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

describe('fault: worker crash', () => {
  for (const share of [0.1, 0.5, 0.9]) {
    faultTest(`SIGKILL of one of two workers at ~${share * 100} %: the other finishes the run, every item exactly once`, async (rig) => {
      const n = 1_500;
      const slow = { EVALGATE_FAULT: 'chunk-delay-ms=60' };
      const { workers, runId } = await rig.startRun(await rig.dataset(n), { workers: [slow, slow] });
      const victim = workers[0]!;

      const at = await rig.waitProgress(runId, share);
      // Both workers run 2 chunks at a time: with 3 or more chunks active, the victim holds at least one.
      const active = await rig.activeChunks();
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      expect(active).toBeGreaterThanOrEqual(3);

      const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n });
      report(`worker SIGKILL at ~${share * 100}%`, {
        killed_at_pct: Math.round((at.completed_count / n) * 100),
        chunks_active_at_kill: active,
        recovery_s: seconds((done.completed_ms ?? 0) - killedAt),
        ...tally,
      });
    });
  }

  faultTest('SIGTERM mid-run: in-flight chunks finish, exit 0, no job left active; the next worker completes the run', async (rig) => {
    const n = 1_000;
    const { workers, runId } = await rig.startRun(await rig.dataset(n), { workers: [{ EVALGATE_FAULT: 'chunk-delay-ms=400' }] });
    const w = workers[0]!;
    await rig.waitProgress(runId, 0.1);
    const activeBefore = await rig.activeChunks();
    expect(activeBefore).toBeGreaterThan(0);

    const termAt = Date.now();
    w.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    const shutdownMs = Date.now() - termAt;
    // Right after exit: the chunks it held were finished and released, not left for the stall checker.
    expect(await rig.activeChunks()).toBe(0);
    const [undone] = await sql<{ n: number }>(rig.em, 'select count(*)::int as n from eval_run_chunks where run_id = ? and done_at is null', [runId]);
    const mid = await rig.run(runId);
    expect(mid.status).toBe('running');
    // Every done chunk recorded all of its 25 items, and no item outside a done chunk was recorded.
    expect(mid.completed_count).toBe((n / 25 - (undone?.n ?? 0)) * 25);

    const next = await rig.startWorker();
    const { done, tally } = await rig.completesExactlyOnce(runId, n);
    next.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
    report('worker SIGTERM mid-run', {
      chunks_in_flight: activeBefore,
      shutdown_s: seconds(shutdownMs),
      exit_code: 0,
      active_after_exit: 0,
      done_at_term_pct: Math.round((mid.completed_count / n) * 100),
      recovery_s: seconds((done.completed_ms ?? 0) - termAt),
      ...tally,
    });
  });
});
