/**
 * Fault suite, PostgreSQL: the disposable server is crashed mid-run
 * (pg_ctl -m immediate: no checkpoint, every connection cut), kept down a few
 * seconds and started again. While it is down the API answers 503 `{error}`
 * at once; the workers' chunk jobs fail and retry with backoff, then fail for
 * good and are retried by the reconciler; the run completes with exact counters.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { items } from '../helpers/factories.ts';
import { faultTest, report, seconds } from '../helpers/fault-rig.ts';

const OUTAGE_MS = 6_000;

describe('fault: PostgreSQL restart', () => {
  faultTest('crash mid-run: 503 {error} at once while down, then the run completes exactly once', async (rig) => {
    const n = 1_500;
    const ds = await rig.dataset(n, items(n, (i) => i % 4 !== 0));
    const ds2 = await rig.dataset(20);
    // Two attempts (1 s backoff) are spent within the outage: chunk jobs fail for good and the
    // reconciler's retry of failed jobs is what finishes the run, the path a long outage takes.
    const workerEnv = { EVALGATE_FAULT: 'chunk-delay-ms=100', CHUNK_ATTEMPTS: '2' };
    const { api, workers, runId } = await rig.startRun(ds, { workers: [workerEnv, workerEnv] });
    const at = await rig.waitProgress(runId, 0.3);

    const outage = await rig.crashPostgres();
    await sleep(500);
    const answers: { what: string; status: number; ms: number; error: unknown }[] = [];
    // Right away (API key still cached) and again after the key cache's 2 s, when authentication itself needs Postgres.
    for (const pause of [0, 2_500]) {
      await sleep(pause);
      const get = await rig.getRun(api, runId);
      answers.push({ what: 'GET run', status: get.value.status, ms: get.ms, error: get.value.body.error });
      const post = await rig.schedule(api, ds2);
      answers.push({ what: 'POST run', status: post.value.status, ms: post.ms, error: post.value.body.error });
    }
    const ready = await rig.readyz(api);
    for (const a of answers) {
      expect(a.status, JSON.stringify(a)).toBe(503);
      expect(typeof a.error, JSON.stringify(a)).toBe('string');
    }
    expect(ready.value.status).toBe(503);
    expect(ready.value.body.checks.postgres).toMatch(/^failed/);
    expect(ready.value.body.checks.redis).toBe('ok');

    await outage.lasting(OUTAGE_MS);
    const upAt = await outage.end();
    for (const w of workers) expect(w.child.exitCode).toBeNull();

    const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: 1_125, failed_count: 375 }, 120_000);
    // The API is back by itself too.
    const again = await rig.getRun(api, runId);
    expect(again.value.status).toBe(200);
    expect(api.proc.child.exitCode).toBeNull();

    const chunkLogLines = (msg: string) =>
      workers.reduce((sum, w) => sum + w.output().split('\n').filter((l) => l.includes('"queue":"run-chunk"') && l.includes(msg)).length, 0);
    const retried = chunkLogLines('job failed; will retry');
    const failedForGood = chunkLogLines('job failed for good');
    // The outage outlasted both attempts of the chunks that ran during it: the reconciler's retry finished them.
    expect(failedForGood).toBeGreaterThan(0);
    // No worker died: the chunk starts the outage cut off were ended once Postgres was back, not counted as crashes.
    const [crashes] = await sql<{ open: number }>(rig.em, 'select coalesce(max(crash_count), 0)::int as open from eval_run_chunks where run_id = ?', [runId]);
    expect(crashes?.open).toBeLessThan(rig.container.env.CHUNK_MAX_CRASHES);
    report('PostgreSQL crash + restart mid-run', {
      down_at_pct: Math.round((at.completed_count / n) * 100),
      outage_s: seconds(upAt - outage.beganAt),
      api_status_while_down: 503,
      api_max_answer_ms_while_down: Math.max(...answers.map((a) => a.ms)),
      api_answers_ms: answers.map((a) => `${a.what.replace(' ', '_')}:${a.ms}`).join(','),
      readyz_while_down_ms: ready.ms,
      chunk_job_retries_with_backoff: retried,
      chunk_jobs_failed_for_good_then_reconciled: failedForGood,
      resumed_s: seconds(((await rig.firstResultAfter(runId, upAt)) ?? 0) - upAt),
      recovery_s: seconds((done.completed_ms ?? 0) - upAt),
      max_chunk_crash_count: crashes?.open ?? -1,
      ...tally,
    });
  });
});
