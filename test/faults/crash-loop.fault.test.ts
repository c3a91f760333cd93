/**
 * Fault suite, a chunk that kills every worker taking it (EVALGATE_FAULT
 * crash-on-chunk=K: the worker SIGKILLs itself as it begins chunk K, as an
 * out-of-memory kill would). Each start is counted in Postgres before the
 * chunk's items are loaded; after CHUNK_MAX_CRASHES starts that never ended,
 * the next start writes the chunk's items as `error` with the reason instead
 * of crashing again, and the run completes. Workers run two chunks at a
 * time: a chunk in flight beside the poison chunk dies with it, and must not
 * be given up with it (a chunk that has crashed a worker runs alone after).
 */
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import type { EvalgateProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/stack.ts';
import { faultTest, report, seconds, type RunRow } from '../helpers/fault-rig.ts';

describe('fault: crash loop', () => {
  faultTest('a chunk that SIGKILLs every worker becomes `error` items after CHUNK_MAX_CRASHES crashes; the rest is scored once; the run completes', async (rig) => {
    const n = 500;
    const poison = 7;
    const maxCrashes = 3;
    const { runId } = await rig.startRun(await rig.dataset(n), { workers: [] });
    const startedAt = Date.now();
    const env = { EVALGATE_FAULT: `crash-on-chunk=${poison}`, WORKER_CONCURRENCY: '2', CHUNK_MAX_CRASHES: String(maxCrashes) };

    // A supervisor's loop: start a worker; when it dies, start the next. Bounded: a crash loop fails the test.
    const deaths: (NodeJS.Signals | number | null)[] = [];
    let ended: RunRow | null = null;
    for (let i = 0; i < maxCrashes + 3 && !ended; i++) {
      const w: EvalgateProcess = rig.spawnWorker(env);
      const outcome = await waitFor<{ died: NodeJS.Signals | number | null } | { run: RunRow }>(
        async () => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return { died: w.child.signalCode ?? w.child.exitCode };
          const r = await rig.run(runId);
          return r.status === 'completed' || r.status === 'failed' ? { run: r } : null;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: 'the worker to die or the run to end' },
      );
      if ('run' in outcome) ended = outcome.run;
      else deaths.push(outcome.died);
    }
    expect(deaths).toEqual(Array.from({ length: maxCrashes }, () => 'SIGKILL'));
    expect(ended?.status).toBe('completed');

    const chunkSize = n / 20;
    const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n - chunkSize, failed_count: 0, error_count: chunkSize });
    const [poisoned] = await sql<{ errors: number; reasons: string[]; outside: number; crash_count: number }>(
      rig.em,
      `select count(*) filter (where r.item_id between c.first_item_id and c.last_item_id and r.status = 'error')::int as errors,
              array_agg(distinct r.error) filter (where r.status = 'error') as reasons,
              count(*) filter (where r.item_id not between c.first_item_id and c.last_item_id and r.status <> 'passed')::int as outside,
              max(c.crash_count) as crash_count
         from eval_run_chunks c join eval_run_items r on r.run_id = c.run_id
        where c.run_id = ? and c.chunk_index = ?`,
      [runId, poison],
    );
    expect(poisoned).toEqual({ errors: chunkSize, reasons: [`chunk crashed its worker ${maxCrashes} times`], outside: 0, crash_count: maxCrashes + 1 });
    // Bystanders: chunks that were in flight when a worker died, counted once each at most, then scored alone.
    const [others] = await sql<{ bystanders: number; max_crashes: number }>(
      rig.em,
      `select count(*) filter (where crash_count > 0)::int as bystanders, coalesce(max(crash_count), 0)::int as max_crashes
         from eval_run_chunks where run_id = ? and chunk_index <> ?`,
      [runId, poison],
    );
    expect(others?.max_crashes ?? 99).toBeLessThanOrEqual(1);
    report('chunk that crashes every worker (crash-on-chunk)', {
      worker_deaths: deaths.length,
      chunk_max_crashes: maxCrashes,
      error_items: poisoned?.errors ?? -1,
      bystander_chunks_counted_once: others?.bystanders ?? -1,
      other_items_passed: done.passed_count,
      run_s: seconds((done.completed_ms ?? 0) - startedAt),
      ...tally,
    });
  });
});
