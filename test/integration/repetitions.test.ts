/**
 * Repetitions on real Postgres, Redis and BullMQ workers, with a fake model
 * and judge that are a real local HTTP server: each item is generated (or
 * read) and scored n times, every repetition is a real call with a sample of
 * its own, the item is recorded once with each repetition's outcome, and the
 * run's pass@1, pass^n and mean per-item spread equal what the results say
 * (computed apart, in this test, from each item's repetitions).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { assertCountersExact, assertCriteriaCountersExact, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { FAKE_JUDGE, startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { api, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';

type Json = Record<string, unknown>;
type Item = Json & { status: string; score: number | null; passed_repetitions: number | null; score_sd: number | null; repetitions: Json[] | null };

const chat = { type: 'chat_completion', provider: 'fake', model: 'gen-1', messages: [{ role: 'user', content: '{{input}}' }] };

let fake: FakeLlm;
let s: Stack;
let t: TenantFixture;

beforeAll(async () => {
  fake = await startFakeLlm();
  s = await startStack({
    workers: true,
    env: {
      JUDGE_CHUNK_SIZE: '10',
      JUDGE_CHUNK_PARALLELISM: '8',
      WORKER_CONCURRENCY: '4',
      RECONCILE_INTERVAL_MS: '2000',
      EVALGATE_PROVIDERS: JSON.stringify({ fake: { base_url: fake.url, api_key: 'sk-rep', concurrency: 8, rpm: 600_000, timeout_ms: 2_000, max_attempts: 3 } }),
    },
  });
  t = await makeTenant(s.container);
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

async function schedule(datasetId: string, body: Json): Promise<{ status: number; body: Json }> {
  return api(s.baseUrl, 'POST', `/v1/datasets/${datasetId}/runs`, t.keys.member, body);
}

async function allItems(runId: string): Promise<Item[]> {
  const out: Item[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: { data: Item[]; next_cursor: string | null } } = await api(s.baseUrl, 'GET', `/v1/eval-runs/${runId}/items?limit=200${cursor ? `&cursor=${cursor}` : ''}`, t.keys.viewer);
    out.push(...page.body.data);
    cursor = page.body.next_cursor;
  } while (cursor);
  return out;
}

/** The run's statistics computed here from its items' repetitions, by the definitions in the README. */
function expected(items: Item[], n: number, minPassed = n) {
  const scored = items.filter((i) => i.status !== 'error');
  let passedSamples = 0;
  let allPassed = 0;
  let sdSum = 0;
  for (const it of scored) {
    const reps = it.repetitions ?? [];
    expect(reps.map((r) => r.repetition)).toEqual(Array.from({ length: n }, (_, k) => k));
    const scores = reps.map((r) => r.score as number);
    const k = reps.filter((r) => r.passed).length;
    const mean = scores.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(scores.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
    expect(it.score).toBeCloseTo(mean, 12);
    expect(it.score_sd).toBeCloseTo(sd, 12);
    expect(it.passed_repetitions).toBe(k);
    expect(it.status).toBe(k >= minPassed ? 'passed' : 'failed');
    passedSamples += k;
    if (k === n) allPassed += 1;
    sdSum += sd;
  }
  return { pass_at_1: passedSamples / (scored.length * n), pass_hat_n: allPassed / scored.length, mean_item_sd: sdSum / scored.length };
}

describe('repetitions', () => {
  it('refuses bad repetitions with 400 naming the field', async () => {
    const ds = await makeDataset(s.container, t.id, [{ input: 'a', expected_output: 'a', output: 'a' }]);
    const ev = await makeEval(s.container, t.id);
    for (const [body, message] of [
      [{ repetitions: 0 }, /repetitions/],
      [{ repetitions: 11 }, /repetitions/],
      [{ repetitions: 1.5 }, /repetitions/],
      [{ repetitions: '3' }, /repetitions/],
      [{ repetitions: 2, repetition_pass: { min_passed: 3 } }, /repetition_pass\.min_passed: min_passed \(3\) exceeds repetitions \(2\)/],
      [{ repetitions: 2, repetition_pass: { min_passed: 1, extra: 1 } }, /extra/],
    ] as const) {
      const r = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, ...body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(Object.keys(r.body)).toEqual(['error']);
      expect(r.body.error).toMatch(message);
    }
  });

  it('scores stored outputs n times: one result per item with each repetition, and the sample counts', async () => {
    const n = 50;
    const ds = await makeDataset(s.container, t.id, Array.from({ length: n }, (_, i) => ({ input: i, expected_output: `a${i}`, output: i % 5 === 0 ? 'x' : `a${i}` })));
    const ev = await makeEval(s.container, t.id);
    const r = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, repetitions: 3 });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body).toMatchObject({ repetitions: 3, repetition_pass: { min_passed: 3 }, sample_count: 3 * n, completed_samples: 0, pass_at_1: null });
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, r.body.id as string);
    // a deterministic evaluator gives the same outcome each time: no spread
    expect(run).toMatchObject({ status: 'completed', completed_count: n, completed_samples: 3 * n, passed_count: 40, failed_count: 10, pass_at_1: 0.8, pass_hat_n: 0.8, mean_item_sd: 0 });
    const items = await allItems(run.id);
    expect(items).toHaveLength(n);
    expect(expected(items, 3)).toEqual({ pass_at_1: 0.8, pass_hat_n: 0.8, mean_item_sd: 0 });
    await assertCountersExact(s.container.orm.em.fork(), run.id);
  });

  it('generates each repetition with a real call of its own, and pass@1, pass^n and the spread follow the samples', async () => {
    const n = 30;
    const reps = 3;
    // the model answers right on two calls of every three: samples differ between repetitions of an item
    let calls = 0;
    fake.reset({ generate: () => (++calls % 3 === 0 ? 'wrong' : 'right') });
    const ds = await makeDataset(s.container, t.id, Array.from({ length: n }, (_, i) => ({ input: `q${i}`, expected_output: 'right' })));
    const ev = await makeEval(s.container, t.id);
    const r = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat, repetitions: reps, repetition_pass: { min_passed: 2 } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, r.body.id as string, 90_000);
    expect(run).toMatchObject({ status: 'completed', completed_count: n, completed_samples: n * reps, error_count: 0, repetition_pass: { min_passed: 2 } });
    // every repetition is a call (the cache key carries the repetition), and no call twice
    const generated = fake.stats.log.filter((e) => e.kind === 'generate');
    expect(generated).toHaveLength(n * reps);
    expect(calls).toBe(n * reps);
    const items = await allItems(run.id);
    const want = expected(items, reps, 2);
    expect(want.pass_at_1).toBeCloseTo(2 / 3, 12); // exactly two right answers in every three calls
    expect(run.pass_at_1).toBeCloseTo(want.pass_at_1, 12);
    expect(run.pass_hat_n).toBeCloseTo(want.pass_hat_n, 12);
    expect(run.mean_item_sd).toBeCloseTo(want.mean_item_sd, 12);
    expect(run.passed_count).toBe(items.filter((i) => (i.passed_repetitions ?? 0) >= 2).length);
    const em = s.container.orm.em.fork();
    await assertCountersExact(em, run.id);
    const [samples] = await sql<{ n: number; reps: number[]; items: number }>(
      em,
      `select count(*)::int as n, array_agg(distinct repetition order by repetition) as reps, count(distinct item_id)::int as items
         from eval_run_samples where run_id = ? and status = 'done'`,
      [run.id],
    );
    expect(samples).toEqual({ n: n * reps, reps: [0, 1, 2], items: n });

    // the same again with the cache: each repetition finds its own cached sample, so the outcomes are the same and nothing is called
    fake.reset({ generate: () => 'never called' });
    const again = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat, repetitions: reps, repetition_pass: { min_passed: 2 } });
    const cached = await waitForRunEnd(s.baseUrl, t.keys.member, again.body.id as string, 90_000);
    expect(fake.stats.log.filter((e) => e.kind === 'generate')).toHaveLength(0);
    expect(cached).toMatchObject({ status: 'completed', passed_count: run.passed_count, pass_at_1: run.pass_at_1, pass_hat_n: run.pass_hat_n });

    // a re-score of the samples with one more repetition than they have is refused
    const tooMany = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, outputs_from_run: run.id, repetitions: 4 });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatch(/has 3 repetition\(s\) of each item/);
    const rescore = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, outputs_from_run: run.id, repetitions: reps });
    const rescored = await waitForRunEnd(s.baseUrl, t.keys.member, rescore.body.id as string, 90_000);
    expect(rescored).toMatchObject({ status: 'completed', pass_at_1: run.pass_at_1, pass_hat_n: run.pass_hat_n });
  });

  it('asks the judge once per repetition, with criteria folded per repetition', async () => {
    const n = 12;
    const ds = await makeDataset(s.container, t.id, Array.from({ length: n }, (_, i) => ({ input: `q${i}`, expected_output: `a${i}`, output: i % 4 === 0 ? `w${i}` : `a${i}` })));
    const ev = await makeEval(s.container, t.id, { criteria: [{ name: 'judge', evaluator: FAKE_JUDGE }, { name: 'exact', evaluator: { type: 'exact_match' } }] });
    const r = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, repetitions: 2 });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, r.body.id as string, 90_000);
    expect(run).toMatchObject({ status: 'completed', completed_count: n, passed_count: 9, failed_count: 3, error_count: 0, pass_at_1: 0.75, pass_hat_n: 0.75 });
    expect(fake.stats.log.filter((e) => e.kind === 'judge')).toHaveLength(2 * n);
    expect(run.usage).toEqual({ prompt_tokens: fake.stats.promptTokens, completion_tokens: fake.stats.completionTokens });
    expect(run.criteria.map((c) => [c.name, c.passed_count, c.failed_count])).toEqual([['judge', 9, 3], ['exact', 9, 3]]);
    const em = s.container.orm.em.fork();
    await assertCountersExact(em, run.id);
    await assertCriteriaCountersExact(em, run.id);
    const items = await allItems(run.id);
    const wrong = items.find((i) => i.status === 'failed')!;
    expect(wrong.repetitions).toHaveLength(2);
    expect((wrong.repetitions![0]!.scores as Json[]).map((c) => c.name)).toEqual(['judge', 'exact']);
  });

  it('keeps a run without repetitions exactly as before', async () => {
    const ds = await makeDataset(s.container, t.id, [{ input: 1, expected_output: 'a', output: 'a' }, { input: 2, expected_output: 'a', output: 'b' }]);
    const ev = await makeEval(s.container, t.id);
    const r = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId });
    const run: EvalRunDto = await waitForRunEnd(s.baseUrl, t.keys.member, r.body.id as string);
    expect(run).toMatchObject({ repetitions: 1, repetition_pass: { min_passed: 1 }, sample_count: 2, completed_samples: 2, pass_at_1: 0.5, pass_hat_n: 0.5, mean_item_sd: null });
    const items = await allItems(run.id);
    expect(items.every((i) => i.repetitions === null && i.passed_repetitions === null && i.score_sd === null)).toBe(true);
  });
});
