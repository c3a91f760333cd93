/**
 * Several criteria per eval version, on real Postgres, Redis and BullMQ
 * workers (and a fake LLM provider that is a real local HTTP server): the
 * config is validated with every bad field named, each item carries every
 * criterion's outcome, the item's score is the weighted mean and its status
 * follows the pass policy, the run's per-criterion counters equal what the
 * results say (computed apart, in assertCriteriaCountersExact) through errors
 * and a retry, and listEvalRunItems filters by a criterion's outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { assertCountersExact, assertCriteriaCountersExact, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { FAKE_JUDGE, startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

type Json = Record<string, unknown>;


/**
 * Item i's output, by i % 4: 0 and 3 the expected answer (every criterion passes), 1 the answer
 * with more text (only `has` passes), 2 something else (nothing passes).
 */
const fourWay = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    input: `q${i}`,
    expected_output: `a${i}`,
    output: i % 4 === 1 ? `a${i} more` : i % 4 === 2 ? 'zzz' : `a${i}`,
  }));

const THREE = (pass: unknown) => ({
  criteria: [
    { name: 'exact', evaluator: { type: 'exact_match' }, weight: 2 },
    { name: 'has', evaluator: { type: 'contains' } },
    { name: 'shape', evaluator: { type: 'regex', pattern: '^a\\d+$' } },
  ],
  pass,
});

let fake: FakeLlm;
let s: Stack;
let t: TenantFixture;

beforeAll(async () => {
  fake = await startFakeLlm();
  s = await startStack({
    workers: true,
    env: {
      CHUNK_SIZE: '100',
      JUDGE_CHUNK_SIZE: '20',
      WORKER_CONCURRENCY: '4',
      RECONCILE_INTERVAL_MS: '1000',
      EVALGATE_PROVIDERS: JSON.stringify({
        fake: { base_url: fake.url, api_key: 'sk-test-criteria', concurrency: 8, rpm: 60_000, timeout_ms: 2_000, max_attempts: 3, prompt_usd_per_1m: 2, completion_usd_per_1m: 8 },
      }),
    },
  });
  t = await makeTenant(s.container);
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});

async function createEval(evaluator: unknown) {
  return api<Json>(s.baseUrl, 'POST', '/v1/evals', t.keys.member, { name: 'criteria', evaluator });
}

describe('criteria config', () => {
  it('accepts several criteria and answers them with their defaults filled in', async () => {
    const r = await createEval(THREE(undefined));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const evaluator = (r.body.latest_version as Json).evaluator as Json;
    expect(evaluator.type).toBe('criteria'); // filled in, so a client can tell the two kinds apart by `type`
    expect(evaluator.pass).toBe('all');
    expect((evaluator.criteria as Json[]).map((c) => [c.name, c.weight])).toEqual([['exact', 2], ['has', 1], ['shape', 1]]);
    expect(((evaluator.criteria as Json[])[2]!.evaluator as Json).flags).toBe('');
  });

  it.each([
    ['no criteria', { criteria: [] }, /criteria: criteria must list at least one criterion/],
    ['21 criteria', { criteria: Array.from({ length: 21 }, (_, i) => ({ name: `c${i}`, evaluator: { type: 'is_json' } })) }, /at most 20 criteria/],
    ['a duplicate name', { criteria: [{ name: 'a', evaluator: { type: 'is_json' } }, { name: 'a', evaluator: { type: 'exact_match' } }] }, /criteria\.1\.name: duplicate criterion name "a"/],
    ['a bad name', { criteria: [{ name: 'has space', evaluator: { type: 'is_json' } }] }, /criteria\.0\.name: name must start with a letter or digit/],
    ['a long name', { criteria: [{ name: 'x'.repeat(65), evaluator: { type: 'is_json' } }] }, /at most 64 characters/],
    ['a zero weight', { criteria: [{ name: 'a', evaluator: { type: 'is_json' }, weight: 0 }] }, /criteria\.0\.weight: weight must be > 0/],
    ['min_passed above the count', { criteria: [{ name: 'a', evaluator: { type: 'is_json' } }], pass: { min_passed: 2 } }, /pass\.min_passed: min_passed \(2\) exceeds the 1 criteria/],
    ['an unknown pass policy', { criteria: [{ name: 'a', evaluator: { type: 'is_json' } }], pass: 'most' }, /pass/],
    ['a bad nested evaluator', { criteria: [{ name: 'a', evaluator: { type: 'regex', pattern: '' } }] }, /criteria\.0\.evaluator\.pattern: pattern must not be empty/],
    ['a nested regex RE2 refuses', { criteria: [{ name: 'a', evaluator: { type: 'regex', pattern: '(a)\\1' } }] }, /evaluator\.criteria\.0\.evaluator\.pattern/],
    ['a judge of an unknown provider', { criteria: [{ name: 'j', evaluator: { ...FAKE_JUDGE, provider: 'nope' } }] }, /evaluator\.criteria\.0\.evaluator\.provider: unknown provider "nope"/],
    ['an unknown key', { criteria: [{ name: 'a', evaluator: { type: 'is_json' } }], extra: 1 }, /extra/],
    ['an unknown evaluator type', { type: 'nope' }, /evaluator\.type: Invalid discriminator value/],
  ])('refuses %s with 400 naming the field', async (_what, evaluator, message) => {
    const r = await createEval(evaluator);
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(Object.keys(r.body)).toEqual(['error']);
    expect(r.body.error).toMatch(message);
  });

  it('refuses a huge criteria array with one 400, not a 500', async () => {
    const criteria = Array.from({ length: 5_000 }, (_, i) => ({ name: `c${i}`, evaluator: { type: 'is_json' } }));
    const r = await createEval({ criteria });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/at most 20 criteria/);
    const alive = await api(s.baseUrl, 'GET', '/v1/evals?limit=1', t.keys.viewer);
    expect(alive.status).toBe(200);
  });
});

describe('runs with several criteria', () => {
  it('scores every criterion per item: weighted mean, pass policy "all", exact per-criterion counters, filters', async () => {
    const n = 400;
    const ds = await makeDataset(s.container, t.id, fourWay(n));
    const ev = await makeEval(s.container, t.id, THREE('all'));
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId)).id);
    // by hand: exact passes on i%4 in {0,3}; has on {0,1,3}; shape on {0,3}.
    // item score = (2·exact + has + shape) / 4: 1 on {0,3}, 0.25 on {1}, 0 on {2}; "all" passes {0,3}
    expect(run).toMatchObject({ status: 'completed', completed_count: n, passed_count: 200, failed_count: 200, error_count: 0 });
    expect(run.mean_score).toBeCloseTo((200 * 1 + 100 * 0.25) / n, 12);
    expect(run.criteria).toEqual([
      { name: 'exact', passed_count: 200, failed_count: 200, error_count: 0, mean_score: 0.5, pass_rate: 0.5 },
      { name: 'has', passed_count: 300, failed_count: 100, error_count: 0, mean_score: 0.75, pass_rate: 0.75 },
      { name: 'shape', passed_count: 200, failed_count: 200, error_count: 0, mean_score: 0.5, pass_rate: 0.5 },
    ]);
    const em = s.container.orm.em.fork();
    await assertCountersExact(em, run.id);
    await assertCriteriaCountersExact(em, run.id);

    const page = await api<{ data: Json[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?limit=4`, t.keys.viewer);
    expect(page.status).toBe(200);
    const [i0, i1, i2] = page.body.data;
    expect(i1).toMatchObject({ status: 'failed', score: 0.25, passed: false, reason: '1 of 3 criteria passed (all must pass); failed: exact, shape' });
    expect(i1!.scores).toEqual([
      { name: 'exact', status: 'failed', score: 0, passed: false, reason: expect.any(String), error: null },
      { name: 'has', status: 'passed', score: 1, passed: true, reason: expect.any(String), error: null },
      { name: 'shape', status: 'failed', score: 0, passed: false, reason: expect.any(String), error: null },
    ]);
    expect(i0).toMatchObject({ status: 'passed', score: 1 });
    expect(i2).toMatchObject({ status: 'failed', score: 0 });

    // filter by a criterion's outcome: has failed only on i%4 = 2, passed on the other 300
    const hasFailed = await api<{ data: Json[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?criterion=has&criterion_status=failed&limit=1000`, t.keys.viewer);
    expect(hasFailed.status).toBe(200);
    expect(hasFailed.body.data).toHaveLength(100);
    expect(hasFailed.body.data.every((d) => d.output === 'zzz')).toBe(true);
    const hasPassedAndItemFailed = await api<{ data: Json[] }>(
      s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?status=failed&criterion=has&criterion_status=passed&limit=1000`, t.keys.viewer,
    );
    expect(hasPassedAndItemFailed.body.data).toHaveLength(100);
    expect(hasPassedAndItemFailed.body.data.every((d) => String(d.output).endsWith(' more'))).toBe(true);
    // a walk with a cursor under the filter sees each item once
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const p: { status: number; body: { data: Json[]; next_cursor: string | null } } = await api(
        s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?criterion=exact&criterion_status=passed&limit=37${cursor ? `&cursor=${cursor}` : ''}`, t.keys.viewer,
      );
      seen.push(...p.body.data.map((d) => d.item_id as string));
      cursor = p.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(200);
    expect(seen).toHaveLength(200);

    const unknown = await api<Json>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?criterion=nope&criterion_status=failed`, t.keys.viewer);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatch(/no criterion "nope" \(its criteria: exact, has, shape\)/);
    const half = await api<Json>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?criterion=has`, t.keys.viewer);
    expect(half.status).toBe(400);
    expect(half.body.error).toMatch(/criterion_status: criterion and criterion_status go together/);
    const badStatus = await api<Json>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?criterion=has&criterion_status=maybe`, t.keys.viewer);
    expect(badStatus.status).toBe(400);
    expect(Object.keys(badStatus.body)).toEqual(['error']);
  });

  it('follows "any" and {min_passed: 2} on the same items', async () => {
    const n = 40;
    const ds = await makeDataset(s.container, t.id, fourWay(n));
    const any = await makeEval(s.container, t.id, THREE('any'));
    const two = await makeEval(s.container, t.id, THREE({ min_passed: 2 }));
    const [ra, rb] = await Promise.all([
      scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, any.evalVersionId).then((r) => waitForRunEnd(s.baseUrl, t.keys.member, r.id)),
      scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, two.evalVersionId).then((r) => waitForRunEnd(s.baseUrl, t.keys.member, r.id)),
    ]);
    // any: {0,1,3} pass; at least 2: {0,3} (item 1 passes only `has`)
    expect(ra).toMatchObject({ status: 'completed', passed_count: 30, failed_count: 10 });
    expect(rb).toMatchObject({ status: 'completed', passed_count: 20, failed_count: 20 });
    expect(ra.mean_score).toBeCloseTo(rb.mean_score as number, 12); // the score does not depend on the policy
  });

  it('makes an item an error when a criterion errors, keeps the others\' outcomes, and a retry keeps every counter exact', async () => {
    const n = 100;
    // numeric_diff throws on a non-numeric output: odd items are '5' (both pass), even items 'x' (exact fails, num errors)
    const ds = await makeDataset(s.container, t.id, Array.from({ length: n }, (_, i) => ({ input: i, expected_output: '5', output: i % 2 ? '5' : 'x' })));
    const ev = await makeEval(s.container, t.id, { criteria: [{ name: 'exact', evaluator: { type: 'exact_match' } }, { name: 'num', evaluator: { type: 'numeric_diff' } }] });
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId)).id);
    expect(run).toMatchObject({ status: 'completed', completed_count: n, passed_count: 50, failed_count: 0, error_count: 50 });
    expect(run.criteria).toEqual([
      { name: 'exact', passed_count: 50, failed_count: 50, error_count: 0, mean_score: 0.5, pass_rate: 0.5 },
      { name: 'num', passed_count: 50, failed_count: 0, error_count: 50, mean_score: 1, pass_rate: 1 },
    ]);
    const em = s.container.orm.em.fork();
    await assertCountersExact(em, run.id);
    await assertCriteriaCountersExact(em, run.id);
    const errors = await api<{ data: Json[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?status=error&limit=1`, t.keys.viewer);
    const e0 = errors.body.data[0]!;
    expect(e0).toMatchObject({ status: 'error', score: null, passed: null });
    expect(e0.error).toMatch(/^criterion num: /);
    expect((e0.scores as Json[]).map((c) => c.status)).toEqual(['failed', 'error']);
    const numErrors = await api<{ data: Json[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?criterion=num&criterion_status=error&limit=1000`, t.keys.viewer);
    expect(numErrors.body.data).toHaveLength(50);

    // the retry takes the error items (and each of their criteria's outcomes) off, then scores them again
    const retried = await api<Json>(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/retry`, t.keys.member);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ completed_count: 50, error_count: 0 });
    expect(retried.body.criteria).toEqual([
      { name: 'exact', passed_count: 50, failed_count: 0, error_count: 0, mean_score: 1, pass_rate: 1 },
      { name: 'num', passed_count: 50, failed_count: 0, error_count: 0, mean_score: 1, pass_rate: 1 },
    ]);
    const again = await waitForRunEnd(s.baseUrl, t.keys.member, run.id);
    expect(again.criteria).toEqual(run.criteria);
    await assertCountersExact(em, run.id);
    await assertCriteriaCountersExact(em, run.id);
  });

  it('compares two runs per criterion they share: counts, paired statistics and a verdict each', async () => {
    const n = 400;
    const ds = await makeDataset(s.container, t.id, fourWay(n));
    // the same criterion names; in head, `exact` is judged leniently (contains): it now passes the i%4 = 1 items
    const base = await makeEval(s.container, t.id, { criteria: [{ name: 'exact', evaluator: { type: 'exact_match' } }, { name: 'has', evaluator: { type: 'contains' } }, { name: 'gone', evaluator: { type: 'is_json' } }] });
    const head = await makeEval(s.container, t.id, { criteria: [{ name: 'exact', evaluator: { type: 'contains' } }, { name: 'has', evaluator: { type: 'contains' } }] });
    const rb = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, base.evalVersionId)).id);
    const rh = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, head.evalVersionId)).id);
    // the gate keeps the pair's summary without the per-criterion part; the compare computes that part and keeps it too
    const gated = await api<Json>(s.baseUrl, 'POST', `/v1/eval-runs/${rh.id}/gate`, t.keys.viewer, { policy: { max_regressions: 0 }, baseline: { run_id: rb.id } });
    expect(gated.status, JSON.stringify(gated.body)).toBe(200);
    expect(gated.body.verdict).toBe('passed');
    const c = await api<{ criteria: { name: string; summary: Json; statistics: Json }[] }>(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${rb.id}&head=${rh.id}&limit=1`, t.keys.viewer);
    const again = await api<{ criteria: unknown[] }>(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${rb.id}&head=${rh.id}&limit=1`, t.keys.viewer);
    expect(again.body.criteria).toEqual(c.body.criteria);
    const [kept] = await sql<{ n: number }>(
      s.container.orm.em.fork(),
      `select jsonb_array_length(summary->'criteria')::int as n from eval_run_comparisons where base_run_id = ? and head_run_id = ?`,
      [rb.id, rh.id],
    );
    expect(kept?.n).toBe(2);
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    expect(c.body.criteria.map((x) => x.name)).toEqual(['exact', 'has']); // `gone` is in base only
    const [exact, has] = c.body.criteria;
    expect(exact!.summary).toEqual({ improved: 100, regressed: 0, unchanged: 300, not_comparable: 0 });
    // by hand: differences are 1 on 100 items and 0 on 300: mean 0.25, sample variance 75/399
    const sd = Math.sqrt(75 / 399);
    expect(exact!.statistics).toMatchObject({ paired_items: n, mean_base: 0.5, mean_head: 0.75, method: 'paired_t', fail_to_pass: 100, pass_to_fail: 0, verdict: 'better' });
    expect(exact!.statistics.mean_delta).toBeCloseTo(0.25, 12);
    expect((exact!.statistics.ci_high as number) - (exact!.statistics.ci_low as number)).toBeCloseTo(2 * 1.965927 * (sd / Math.sqrt(n)), 4); // t(0.975, 399) ≈ 1.965927
    expect(exact!.statistics.p_value as number).toBeLessThan(1e-12);
    expect(exact!.statistics.mcnemar_p_value as number).toBeCloseTo(2 * 0.5 ** 100, 40);
    // has did not change at all: every difference is 0, so the t-test is undefined and the sign test finds nothing
    expect(has!.summary).toEqual({ improved: 0, regressed: 0, unchanged: n, not_comparable: 0 });
    expect(has!.statistics).toMatchObject({ mean_delta: 0, method: 'sign_test', p_value: 1, verdict: 'no_significant_difference' });
    // runs with one evaluator have no per-criterion comparison
    const single = await makeEval(s.container, t.id);
    const rs = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, single.evalVersionId)).id);
    const none = await api<{ criteria: unknown[] }>(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${rs.id}&head=${rh.id}&limit=1`, t.keys.viewer);
    expect(none.body.criteria).toEqual([]);
  });

  it('scores a judge criterion beside a deterministic one, item by item, with the judge\'s tokens on the item', async () => {
    fake.reset();
    const n = 30;
    // the fake judges 10/10 when OUTPUT equals EXPECTED, else 2/10; every third output is wrong
    const ds = await makeDataset(s.container, t.id, Array.from({ length: n }, (_, i) => ({ input: `q${i}`, expected_output: `a${i}`, output: i % 3 === 0 ? `w${i}` : `a${i}` })));
    const ev = await makeEval(s.container, t.id, { criteria: [{ name: 'judge', evaluator: FAKE_JUDGE }, { name: 'exact', evaluator: { type: 'exact_match' } }] });
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId)).id, 90_000);
    expect(run).toMatchObject({ status: 'completed', completed_count: n, passed_count: 20, failed_count: 10, error_count: 0 });
    expect(run.criteria).toEqual([
      { name: 'judge', passed_count: 20, failed_count: 10, error_count: 0, mean_score: expect.closeTo((20 * 1 + 10 * 0.2) / n, 12), pass_rate: 20 / n },
      { name: 'exact', passed_count: 20, failed_count: 10, error_count: 0, mean_score: 20 / n, pass_rate: 20 / n },
    ]);
    expect(run.mean_score).toBeCloseTo((20 * 1 + 10 * 0.1) / n, 12); // wrong items: (0.2 + 0) / 2
    expect(fake.stats.ok).toBe(n); // one judge call per item
    expect(run.usage).toEqual({ prompt_tokens: fake.stats.promptTokens, completion_tokens: fake.stats.completionTokens });
    const em = s.container.orm.em.fork();
    await assertCountersExact(em, run.id);
    await assertCriteriaCountersExact(em, run.id);
    const [sums] = await sql<{ p: number; chunks: number }>(
      em,
      `select (select sum(prompt_tokens)::int from eval_run_items where run_id = ?) as p,
              (select count(*)::int from eval_run_chunks where run_id = ?) as chunks`,
      [run.id, run.id],
    );
    expect(sums?.p).toBe(run.usage.prompt_tokens);
    expect(sums?.chunks).toBe(2); // a run with a judge criterion is cut into JUDGE_CHUNK_SIZE chunks
    const failed = await api<{ data: Json[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${run.id}/items?criterion=judge&criterion_status=failed&limit=1`, t.keys.viewer);
    expect((failed.body.data[0]!.scores as Json[])[0]).toMatchObject({ name: 'judge', status: 'failed', score: expect.closeTo(0.2, 12), reason: 'differs from the expected answer' });
  });
});
