/**
 * Fault suite, several criteria: a worker SIGKILLed mid-run, and a chunk that
 * kills every worker taking it (given up as `error` items). Every item is
 * still scored exactly once, and each criterion's counters equal what the
 * results say (a given-up item counts as an error of every criterion).
 */
import { describe, expect } from 'vitest';
import { assertCriteriaCountersExact, makeEval } from '../helpers/factories.ts';
import type { EvalgateProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/stack.ts';
import { faultTest, report, seconds, type RunRow } from '../helpers/fault-rig.ts';

// items() outputs the expected answer: exact and has pass every item, shape (answer 0–99 by regex) the first 100
const CRITERIA = {
  criteria: [
    { name: 'exact', evaluator: { type: 'exact_match' } },
    { name: 'has', evaluator: { type: 'contains' } },
    { name: 'shape', evaluator: { type: 'regex', pattern: '^answer [0-9]{1,2}$' } },
  ],
  pass: 'any',
};

describe('fault: several criteria', () => {
  faultTest('SIGKILL of one of two workers at ~50 % of a 3-criteria run: every item once, every criterion\'s counters exact', async (rig) => {
    const n = 1_500;
    const ev = await makeEval(rig.container, rig.tenant.id, CRITERIA);
    const slow = { EVALGATE_FAULT: 'chunk-delay-ms=60' };
    const { workers, runId } = await rig.startRun(await rig.dataset(n), { workers: [slow, slow], evalVersionId: ev.evalVersionId });
    await rig.waitProgress(runId, 0.5);
    const killedAt = Date.now();
    workers[0]!.kill('SIGKILL');
    expect((await workers[0]!.exited).signal).toBe('SIGKILL');
    const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n, failed_count: 0, error_count: 0 });
    const stats = await assertCriteriaCountersExact(rig.em, runId);
    expect(stats.map((c) => [c.name, c.passed_count, c.failed_count, c.error_count])).toEqual([
      ['exact', n, 0, 0],
      ['has', n, 0, 0],
      ['shape', 100, n - 100, 0],
    ]);
    report('criteria: worker SIGKILL at ~50%', { recovery_s: seconds((done.completed_ms ?? 0) - killedAt), ...tally });
  });

  faultTest('a chunk that SIGKILLs every worker is given up: its items are errors of every criterion, the counters stay exact', async (rig) => {
    const n = 500;
    const poison = 3;
    const maxCrashes = 2;
    const ev = await makeEval(rig.container, rig.tenant.id, CRITERIA);
    const { runId } = await rig.startRun(await rig.dataset(n), { workers: [], evalVersionId: ev.evalVersionId });
    const env = { EVALGATE_FAULT: `crash-on-chunk=${poison}`, WORKER_CONCURRENCY: '2', CHUNK_MAX_CRASHES: String(maxCrashes) };
    let ended: RunRow | null = null;
    for (let i = 0; i < maxCrashes + 3 && !ended; i++) {
      const w: EvalgateProcess = rig.spawnWorker(env);
      const outcome = await waitFor<{ died: true } | { run: RunRow }>(
        async () => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return { died: true };
          const r = await rig.run(runId);
          return r.status === 'completed' || r.status === 'failed' ? { run: r } : null;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: 'the worker to die or the run to end' },
      );
      if ('run' in outcome) {
        ended = outcome.run;
        w.kill('SIGTERM');
        await w.exited;
      }
    }
    expect(ended?.status).toBe('completed');
    const chunkSize = n / 20;
    await rig.completesExactlyOnce(runId, n, { passed_count: n - chunkSize, failed_count: 0, error_count: chunkSize });
    const stats = await assertCriteriaCountersExact(rig.em, runId);
    // the given-up items have no outcome for any criterion: each counts them as its errors
    expect(stats.map((c) => c.error_count)).toEqual([chunkSize, chunkSize, chunkSize]);
    expect(stats.map((c) => c.passed_count + c.failed_count)).toEqual([n - chunkSize, n - chunkSize, n - chunkSize]);
  });
});
