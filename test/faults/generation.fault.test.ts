/**
 * Fault suite, runs that generate their outputs (a chat_completion target on
 * a fake model started in the test process): a worker SIGKILLed
 * mid-generation, Redis flushed mid-generation, the model hanging, and the
 * sample cache under a crash and under two runs at once. Besides exactly one
 * result per item, every item must end with exactly one sample (done or
 * error, none pending), and the model must have seen no more generation
 * requests for an item's prompt than its sample's `attempts` (the calls are
 * counted in Postgres before they are sent).
 */
import { describe, expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { makeEval } from '../helpers/factories.ts';
import { FAKE_JUDGE, startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { faultTest, report, seconds, type Rig } from '../helpers/fault-rig.ts';
import { waitFor } from '../helpers/stack.ts';

/** n items "q<i>"; the fake upper-cases the prompt, so every one passes exact_match (expected "Q<i>"). */
const genItems = (n: number) => Array.from({ length: n }, (_, i) => ({ input: { question: `q${i}` }, expected_output: `Q${i}`, metadata: { i } }));

const TARGET = { type: 'chat_completion', provider: 'fake', model: 'gen-1', messages: [{ role: 'user', content: '{{input.question}}' }] };


/** A worker's env: the fake as provider "fake", chunks of 20 items, `parallelism` items at a time per chunk. */
function workerEnv(fake: FakeLlm, opts: { timeoutMs?: number; parallelism?: number } = {}): Record<string, string> {
  return {
    JUDGE_CHUNK_SIZE: '20',
    JUDGE_CHUNK_PARALLELISM: String(opts.parallelism ?? 4),
    EVALGATE_PROVIDERS: JSON.stringify({
      fake: { base_url: fake.url, concurrency: 16, rpm: 600_000, timeout_ms: opts.timeoutMs ?? 1_000, max_attempts: 3, prompt_usd_per_1m: 1, completion_usd_per_1m: 1 },
    }),
  };
}

/** Generation requests the fake saw (answered or left hanging), by prompt. */
function generateCalls(fake: FakeLlm): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of [...fake.stats.log, ...fake.stats.hungLog]) if (e.kind === 'generate') m.set(e.prompt ?? '', (m.get(e.prompt ?? '') ?? 0) + 1);
  return m;
}

interface SampleRow {
  item_id: string;
  q: string;
  status: 'pending' | 'done' | 'error';
  attempts: number;
  cached: boolean;
  result_status: string | null;
}

async function samples(rig: Rig, runId: string): Promise<SampleRow[]> {
  return sql<SampleRow>(
    rig.em,
    `select s.item_id, d.input->>'question' as q, s.status, s.attempts, s.cached,
            (select r.status from eval_run_items r where r.run_id = s.run_id and r.item_id = s.item_id limit 1) as result_status
       from eval_run_samples s join dataset_items d on d.id = s.item_id
      where s.run_id = ?`,
    [runId],
  );
}

/**
 * Exactly one sample per item, done or error (none pending), each beside its
 * item's result (an error sample with an error result), and no prompt called
 * more often than its sample's attempts (`calls`: the fake's view, for this run
 * alone). Returns the tallies the `[fault]` line reports.
 */
async function assertSamples(rig: Rig, runId: string, n: number, calls: Map<string, number>) {
  const rows = await samples(rig, runId);
  expect(rows).toHaveLength(n);
  expect(new Set(rows.map((r) => r.item_id)).size).toBe(n);
  const [orphans] = await sql<{ n: number }>(
    rig.em,
    `select count(*)::int as n from eval_run_items r
      where r.run_id = ? and not exists (select 1 from eval_run_samples s where s.run_id = r.run_id and s.item_id = r.item_id)`,
    [runId],
  );
  expect(orphans?.n, 'results without a sample').toBe(0);
  const pending = rows.filter((r) => r.status === 'pending').length;
  expect(pending, 'pending samples').toBe(0);
  const overCalled: string[] = [];
  for (const r of rows) {
    expect(r.result_status, r.q).not.toBeNull();
    if (r.status === 'error') expect(r.result_status, r.q).toBe('error');
    else expect(r.result_status, r.q).not.toBe('error');
    if ((calls.get(r.q) ?? 0) > r.attempts) overCalled.push(`${r.q}: ${calls.get(r.q)} calls > ${r.attempts} attempts`);
  }
  expect(overCalled, 'prompts called more often than their attempts').toEqual([]);
  return {
    calls: [...calls.values()].reduce((a, b) => a + b, 0),
    attempts: rows.reduce((a, r) => a + r.attempts, 0),
    sample_errors: rows.filter((r) => r.status === 'error').length,
    retried_items: rows.filter((r) => r.attempts > 1).length,
    cached_samples: rows.filter((r) => r.cached).length,
    pending,
  };
}

/** Runs `body` with a fake model, closed afterwards. */
function withFake(behavior: Parameters<typeof startFakeLlm>[0], body: (fake: FakeLlm, rig: Rig) => Promise<void>) {
  return async (rig: Rig) => {
    const fake = await startFakeLlm(behavior);
    try {
      await body(fake, rig);
    } finally {
      await fake.close();
    }
  };
}

describe('fault: generating runs', () => {
  faultTest(
    'SIGKILL of one of two workers mid-generation: the other finishes; one sample per item, calls ≤ attempts',
    withFake({ latencyMs: 80 }, async (fake, rig) => {
      const n = 400;
      const env = workerEnv(fake);
      const { workers, runId } = await rig.startRun(await rig.dataset(n, genItems(n)), { api: env, workers: [env, env], body: { target: TARGET, cache: false } });
      const victim = workers[0]!;
      const at = await rig.waitProgress(runId, 0.3);
      // A worker has at most 8 requests out (2 chunks x 4 items): with 9 or more in flight, the victim has at least one.
      const inFlight = await waitFor(async () => (fake.stats.inFlight >= 9 ? fake.stats.inFlight : null), { timeoutMs: 20_000, intervalMs: 2, what: '9 requests in flight' });
      const [claimed] = await sql<{ n: number }>(rig.em, "select count(*)::int as n from eval_run_samples where run_id = ? and status = 'pending'", [runId]);
      const killedAt = Date.now();
      victim.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      expect(claimed?.n ?? 0, 'samples claimed but not recorded at the kill').toBeGreaterThan(0);

      const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n, error_count: 0 });
      const s = await assertSamples(rig, runId, n, generateCalls(fake));
      expect(s.calls).toBeGreaterThanOrEqual(n);
      // the victim's call in flight was counted before it was sent, so its redelivery is that item's second attempt
      expect(s.retried_items).toBeGreaterThanOrEqual(1);
      report('worker SIGKILL mid-generation', {
        killed_at_pct: Math.round((at.completed_count / n) * 100),
        pending_samples_at_kill: claimed?.n ?? 0,
        requests_in_flight_at_kill: inFlight,
        recovery_s: seconds((done.completed_ms ?? 0) - killedAt),
        ...s,
        ...tally,
      });
    }),
  );

  faultTest(
    'Redis FLUSHALL mid-generation: the reconciler rebuilds the jobs; one sample per item, calls ≤ attempts',
    withFake({ latencyMs: 80 }, async (fake, rig) => {
      const n = 400;
      const { runId } = await rig.startRun(await rig.dataset(n, genItems(n)), { api: workerEnv(fake), workers: [workerEnv(fake)], body: { target: TARGET, cache: false } });
      const at = await rig.waitProgress(runId, 0.3);
      const flushedAt = Date.now();
      expect(await rig.redis.client().flushall()).toBe('OK');
      const { done, tally } = await rig.completesExactlyOnce(runId, n, { passed_count: n, error_count: 0 });
      const s = await assertSamples(rig, runId, n, generateCalls(fake));
      report('Redis FLUSHALL mid-generation', {
        flushed_at_pct: Math.round((at.completed_count / n) * 100),
        recovery_s: seconds((done.completed_ms ?? 0) - flushedAt),
        ...s,
        ...tally,
      });
    }),
  );

  faultTest(
    'the model hangs (40 requests never answer, timeout 500 ms): those items retry and end done or error, none stuck; calls = attempts',
    withFake({ latencyMs: 20, hangNext: 40 }, async (fake, rig) => {
      const n = 200;
      const { runId } = await rig.startRun(await rig.dataset(n, genItems(n)), { api: workerEnv(fake), workers: [workerEnv(fake, { timeoutMs: 500 })], body: { target: TARGET, cache: false } });
      const { done, tally } = await rig.completesExactlyOnce(runId, n);
      expect(fake.stats.hung).toBe(40);
      const calls = generateCalls(fake);
      const s = await assertSamples(rig, runId, n, calls);
      // one worker and no crash: every claimed attempt was sent, so calls equal attempts exactly
      expect(s.calls).toBe(s.attempts);
      // each hung request is a call; an item that got an answer made one more, an item that hung 3 times none
      expect(s.calls).toBe(40 + n - s.sample_errors);
      const hungPrompts = new Set(fake.stats.hungLog.map((e) => e.prompt));
      for (const r of await samples(rig, runId)) {
        if (r.status === 'error') expect(r.attempts, r.q).toBe(3); // only an item whose every attempt hung
        if (!hungPrompts.has(r.q)) expect(r.attempts, r.q).toBe(1);
      }
      expect(done.passed_count + done.error_count).toBe(n);
      expect(done.error_count).toBe(s.sample_errors);
      report('model hangs (40 requests, timeout 500 ms)', {
        hung_requests: fake.stats.hung,
        hung_items: hungPrompts.size,
        ...s,
        passed: done.passed_count,
        errors: done.error_count,
        ...tally,
      });
    }),
  );

  faultTest(
    'cache under a crash: run B of a cached target+dataset, a worker SIGKILLed mid-run, calls the model 0 times (a cached key is never paid twice)',
    withFake({ latencyMs: 20 }, async (fake, rig) => {
      const n = 200;
      const ds = await rig.dataset(n, genItems(n));
      const env = workerEnv(fake);
      const { api, workers, runId: runA } = await rig.startRun(ds, { api: env, workers: [env, env], body: { target: TARGET, cache: true } });
      const a = await rig.completesExactlyOnce(runA, n, { passed_count: n });
      const sa = await assertSamples(rig, runA, n, generateCalls(fake));
      const [cacheA] = await sql<{ n: number }>(rig.em, 'select count(*)::int as n from sample_cache where tenant_id = ?', [rig.tenant.id]);
      expect(cacheA?.n).toBe(n);

      // Run B judges the cached samples on the same (slow) fake: slow enough to be killed mid-run.
      fake.reset({ latencyMs: 100 });
      const judge = await makeEval(rig.container, rig.tenant.id, FAKE_JUDGE);
      const sched = await rig.schedule(api, ds, { evalVersionId: judge.evalVersionId, body: { target: TARGET, cache: true } });
      expect(sched.value.status, JSON.stringify(sched.value.body)).toBe(202);
      const runB = sched.value.body.id as string;
      const at = await rig.waitProgress(runB, 0.3);
      const killedAt = Date.now();
      workers[0]!.kill('SIGKILL');
      expect((await workers[0]!.exited).signal).toBe('SIGKILL');
      const b = await rig.completesExactlyOnce(runB, n, { passed_count: n });
      const callsB = generateCalls(fake);
      const sb = await assertSamples(rig, runB, n, callsB);
      expect(sb.calls, 'generation calls during run B').toBe(0);
      expect(sb.cached_samples).toBe(n);
      expect(sb.attempts).toBe(0);
      const judgeCalls = fake.stats.log.filter((e) => e.kind === 'judge').length;
      expect(judgeCalls).toBeGreaterThanOrEqual(n);
      report('cached run B with a worker SIGKILLed', {
        run_a_calls: sa.calls,
        run_a_attempts: sa.attempts,
        cache_rows: cacheA?.n ?? 0,
        killed_at_pct: Math.round((at.completed_count / n) * 100),
        recovery_s: seconds((b.done.completed_ms ?? 0) - killedAt),
        run_b_generate_calls: sb.calls,
        run_b_attempts: sb.attempts,
        run_b_cached: sb.cached_samples,
        run_b_judge_calls: judgeCalls,
        items: a.tally.items + b.tally.items,
        lost: a.tally.lost + b.tally.lost,
        duplicates: a.tally.duplicates + b.tally.duplicates,
      });
    }),
  );

  faultTest(
    'two runs of the same not-yet-cached target at once on two workers: one cache row per request, one sample per item per run',
    withFake({ latencyMs: 50 }, async (fake, rig) => {
      const n = 200;
      const ds = await rig.dataset(n, genItems(n));
      const env = workerEnv(fake);
      const api = await rig.startApi(env);
      await Promise.all([rig.startWorker(env), rig.startWorker(env)]);
      const [s1, s2] = await Promise.all([0, 1].map(() => rig.schedule(api, ds, { body: { target: TARGET, cache: true } })));
      for (const s of [s1!, s2!]) expect(s.value.status, JSON.stringify(s.value.body)).toBe(202);
      const runs = [s1!.value.body.id as string, s2!.value.body.id as string];
      const ends = await Promise.all(runs.map((r) => rig.completesExactlyOnce(r, n, { passed_count: n })));

      const calls = generateCalls(fake);
      // per prompt, the calls both runs made are within the attempts both recorded
      const rows = (await Promise.all(runs.map((r) => samples(rig, r)))).flat();
      const attemptsByPrompt = new Map<string, number>();
      for (const r of rows) attemptsByPrompt.set(r.q, (attemptsByPrompt.get(r.q) ?? 0) + r.attempts);
      for (const [q, c] of calls) expect(c, q).toBeLessThanOrEqual(attemptsByPrompt.get(q) ?? 0);
      // each run alone: one sample per item, none pending (calls checked above across both runs)
      const perRun = [];
      for (const r of runs) perRun.push(await assertSamples(rig, r, n, new Map()));
      const [cache] = await sql<{ rows: number; keys: number }>(rig.em, 'select count(*)::int as rows, count(distinct key)::int as keys from sample_cache where tenant_id = ?', [rig.tenant.id]);
      expect(cache).toEqual({ rows: n, keys: n });
      expect(calls.size).toBe(n);
      const calledTwice = [...calls.values()].filter((c) => c > 1).length;
      report('two runs of one cold cached target at once', {
        prompts: calls.size,
        calls: [...calls.values()].reduce((a, b) => a + b, 0),
        attempts: rows.reduce((a, r) => a + r.attempts, 0),
        prompts_called_twice: calledTwice,
        cached_samples: perRun.reduce((a, s) => a + s.cached_samples, 0),
        cache_rows: cache?.rows ?? 0,
        items: ends.reduce((a, e) => a + e.tally.items, 0),
        lost: ends.reduce((a, e) => a + e.tally.lost, 0),
        duplicates: ends.reduce((a, e) => a + e.tally.duplicates, 0),
      });
    }),
  );
});
