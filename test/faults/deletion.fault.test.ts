/**
 * Fault suite, deletion: a worker SIGKILLed in the middle of purging a
 * deleted run's results (its own disposable PostgreSQL and redis-server).
 * The mark in Postgres outlives it, and the next worker (the stalled purge
 * job, or the reconciler's enqueue) deletes the rest: nothing is left, the
 * other run is whole, and every batch committed whole (never part of one).
 */
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { api as call } from '../helpers/runs.ts';
import { assertCountersExact } from '../helpers/factories.ts';
import { faultTest, report } from '../helpers/fault-rig.ts';
import { seedCompletedRun, seedDataset } from '../helpers/seed-run.ts';
import { waitFor } from '../helpers/stack.ts';

describe('fault: deletion', () => {
  faultTest('SIGKILL of the worker purging a deleted run: the next worker finishes the deletion, nothing left, nothing else touched', async (rig) => {
    const n = 20_000;
    const ds = await seedDataset(rig.container, rig.tenant.id, n);
    const doomed = await seedCompletedRun(rig.container, rig.tenant.id, ds, rig.evalVersionId);
    const kept = await seedCompletedRun(rig.container, rig.tenant.id, ds, rig.evalVersionId);
    const results = async (runId: string) =>
      (await sql<{ n: number }>(rig.em, 'select count(*)::int as n from eval_run_items where run_id = ?', [runId]))[0]?.n ?? 0;
    const marks = async () => (await sql<{ n: number }>(rig.em, 'select count(*)::int as n from deletions'))[0]?.n ?? 0;

    const api = await rig.startApi();
    const deleted = await call(api.baseUrl, 'DELETE', `/v1/eval-runs/${doomed}`, rig.tenant.keys.owner);
    expect(deleted.status).toBe(202);
    expect(await results(doomed)).toBe(n);

    // 100 rows a batch, 20 ms after each: 200 batches, slow enough to be cut
    const victim = await rig.startWorker({ DELETION_BATCH_ROWS: '100', EVALGATE_FAULT: 'purge-delay-ms=20' });
    await waitFor(async () => (await results(doomed)) <= n - 1_000, { what: 'the purge under way', intervalMs: 20 });
    victim.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    const left = await results(doomed);
    expect(left).toBeGreaterThan(0);
    expect(left % 100).toBe(0); // every batch committed whole or not at all
    expect(await marks()).toBe(1);

    const next = await rig.startWorker({ DELETION_BATCH_ROWS: '100' });
    await waitFor(async () => (await marks()) === 0, { what: 'the deletion finished by the next worker', timeoutMs: 60_000 });
    expect(await results(doomed)).toBe(0);
    expect(await results(kept)).toBe(n);
    await assertCountersExact(rig.em, kept);
    next.kill('SIGTERM');
    expect((await next.exited).code).toBe(0);
    report('worker SIGKILL mid-purge', { results: n, left_at_kill: left, finished_by_next_worker: true });
  });
});
