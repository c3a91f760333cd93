/**
 * Fault suite, API: the API process dies (SIGKILL, EVALGATE_FAULT=crash-before-enqueue)
 * between the commit of a new run and its enqueue. The client sees a failed
 * request, the run waits `pending` in Postgres, a retry with the same
 * Idempotency-Key answers the same run, and a worker's reconciler starts it:
 * it completes exactly once.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { items } from '../helpers/factories.ts';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

describe('fault: API crash between commit and enqueue', () => {
  faultTest('the run exists pending, the reconciler starts it, it completes exactly once', async (rig) => {
    const n = 300;
    const ds = await rig.dataset(n, items(n, (i) => i % 5 !== 0));
    const crashing = await rig.startApi({ EVALGATE_FAULT: 'crash-before-enqueue' });
    const idempotencyKey = randomUUID();

    const crashedAt = Date.now();
    const t0 = performance.now();
    const failure = await rig.schedule(crashing, ds, { headers: { 'idempotency-key': idempotencyKey } }).then(
      (r) => ({ answered: r.value.status }),
      (err: unknown) => ({ error: String((err as Error).cause ?? err) }),
    );
    // No answer at all: the connection died with the process.
    expect(failure).toHaveProperty('error');
    expect(await crashing.proc.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const clientErrorMs = Math.round(performance.now() - t0);

    const runs = await sql<{ id: string; status: string }>(rig.em, 'select id, status from eval_runs where dataset_id = ?', [ds]);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.status).toBe('pending');
    const runId = runs[0]!.id;

    // The client retries with its Idempotency-Key on a healthy API: the same run, not a second one.
    const api = await rig.startApi();
    const retry = await rig.schedule(api, ds, { headers: { 'idempotency-key': idempotencyKey } });
    expect(retry.value.status).toBe(202);
    expect(retry.value.body.id).toBe(runId);
    expect((await rig.run(runId)).status).toBe('pending');

    await rig.startWorker();
    const workerReadyAt = Date.now();
    const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: 240, failed_count: 60 });
    const after = await sql<{ n: number }>(rig.em, 'select count(*)::int as n from eval_runs where dataset_id = ?', [ds]);
    expect(after[0]?.n).toBe(1);

    report('API SIGKILL between commit and enqueue', {
      client_saw: 'connection error',
      client_error_after_ms: clientErrorMs,
      run_after_crash: 'pending',
      idempotent_retry: 'same run',
      worker_ready_to_completed_s: seconds((done.completed_ms ?? 0) - workerReadyAt),
      crash_to_completed_s: seconds((done.completed_ms ?? 0) - crashedAt),
      runs_for_dataset: 1,
      ...tally,
    });
  });
});
