/**
 * llm_judge against a fake provider that is a real local HTTP server: 429s
 * with Retry-After, 5xx bursts, hangs, garbage answers, 401, usage and cost,
 * and cancel stopping the spending. Counters equal count(results) throughout.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { assertCountersExact, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { api, getRun, scheduleRun, waitForProgress, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const JUDGE = {
  type: 'llm_judge',
  provider: 'fake',
  model: 'judge-1',
  messages: [
    { role: 'system', content: 'You grade answers.' },
    { role: 'user', content: 'QUESTION: {{input}}\nOUTPUT: {{output}}\nEXPECTED: {{expected_output}}\nTAG: {{metadata.tag}}' },
  ],
  output: { kind: 'numeric', min: 0, max: 10 },
  pass_threshold: 0.5,
};

/** n items; every third one's output is wrong. */
const judgeItems = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ input: `q${i}`, expected_output: `a${i}`, output: i % 3 === 0 ? `wrong${i}` : `a${i}`, metadata: { tag: `t${i}` } }));

let fake: FakeLlm;
let s: Stack;
let t: TenantFixture;
const SECRET_KEY = 'sk-test-0123456789abcdef';

beforeAll(async () => {
  fake = await startFakeLlm();
  s = await startStack({
    workers: true,
    env: {
      JUDGE_CHUNK_SIZE: '20',
      JUDGE_CHUNK_PARALLELISM: '16',
      WORKER_CONCURRENCY: '4',
      RECONCILE_INTERVAL_MS: '2000',
      EVALGATE_PROVIDERS: JSON.stringify({
        fake: { base_url: fake.url, api_key: SECRET_KEY, concurrency: 8, rpm: 60_000, timeout_ms: 1_000, max_attempts: 3, prompt_usd_per_1m: 2, completion_usd_per_1m: 8 },
      }),
    },
  });
  t = await makeTenant(s.container);
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
});
beforeEach(() => fake.reset());

async function run(n: number) {
  const ds = await makeDataset(s.container, t.id, judgeItems(n));
  const ev = await makeEval(s.container, t.id, JUDGE);
  return scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
}

describe('llm_judge', () => {
  it('scores every item despite 30% 429s, and tokens and cost add up', async () => {
    fake.reset({ rate429: 0.3, retryAfterSeconds: 0, latencyMs: 5 });
    const scheduled = await run(150);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id, 90_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: 150, passed_count: 100, failed_count: 50, error_count: 0 });
    expect(fake.stats.status429).toBeGreaterThan(20);
    expect(done.mean_score).toBeCloseTo((100 * 1 + 50 * 0.2) / 150, 10);
    await assertCountersExact(s.container.orm.em.fork(), done.id);
    // every token the provider billed is on the run, and on the items
    expect(done.usage).toEqual({ prompt_tokens: fake.stats.promptTokens, completion_tokens: fake.stats.completionTokens });
    const [sums] = await sql<{ p: number; c: number; cost: number }>(
      s.container.orm.em.fork(),
      'select sum(prompt_tokens)::int as p, sum(completion_tokens)::int as c, sum(cost_usd) as cost from eval_run_items where run_id = ?',
      [done.id],
    );
    expect(sums).toMatchObject({ p: done.usage.prompt_tokens, c: done.usage.completion_tokens });
    expect(done.cost_usd).toBeCloseTo((done.usage.prompt_tokens * 2 + done.usage.completion_tokens * 8) / 1e6, 12);
    expect(Number(sums?.cost)).toBeCloseTo(done.cost_usd as number, 12);
    // the judge's reasoning is the item's reason, and the key went only to the provider
    const items = await api<{ data: { reason: string; status: string }[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${done.id}/items?status=failed&limit=5`, t.keys.viewer);
    expect(items.body.data[0]?.reason).toBe('differs from the expected answer');
    expect([...fake.stats.authorization]).toEqual([`Bearer ${SECRET_KEY}`]);
    expect(JSON.stringify(await api(s.baseUrl, 'GET', `/v1/eval-runs/${done.id}/items?limit=1000`, t.keys.viewer))).not.toContain(SECRET_KEY);
  });

  it('honours Retry-After: after a 429 nobody sends to the provider until it has passed', async () => {
    fake.reset({ rate429: 0.02, retryAfterSeconds: 2 }); // request 1 of every 100 is a 429
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await run(30)).id, 60_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: 30, error_count: 0 });
    const log = [...fake.stats.log].sort((x, y) => x.at - y.at);
    const first429 = log.findIndex((r) => r.status === 429);
    expect(first429).toBeGreaterThanOrEqual(0);
    const after = log.slice(first429 + 1).filter((r) => r.at > (log[first429] as { at: number }).at + 500);
    // requests already in flight may land within a few ms; nothing new is sent for the 2 s it asked for
    expect(after.length).toBeGreaterThan(0);
    expect((after[0] as { at: number }).at - (log[first429] as { at: number }).at).toBeGreaterThanOrEqual(1_900);
  });

  it('retries 5xx bursts and hung requests (timeouts) and still scores every item', async () => {
    fake.reset({ fail5xxNext: 10, hangNext: 3 });
    const scheduled = await run(40);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id, 90_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: 40, error_count: 0 });
    expect(fake.stats.status5xx).toBe(10);
    expect(fake.stats.hung).toBe(3);
    await assertCountersExact(s.container.orm.em.fork(), done.id);
  });

  it('reads fenced JSON, and turns garbage or out-of-range answers into error items quoting the answer', async () => {
    fake.reset({ answer: 'fenced' });
    const fenced = await waitForRunEnd(s.baseUrl, t.keys.member, (await run(10)).id);
    expect(fenced).toMatchObject({ status: 'completed', error_count: 0, completed_count: 10 });

    for (const [answer, quote] of [['garbage', /pretty good, maybe a seven/], ['wrong_schema', /outside \[0, 10\]/], ['malformed_json', /unparsable judge answer/]] as const) {
      fake.reset({ answer });
      const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await run(6)).id, 60_000);
      expect(done, answer).toMatchObject({ status: 'completed', completed_count: 6, error_count: 6, passed_count: 0 });
      const errs = await api<{ data: { error: string; attempts: number; status: string }[] }>(s.baseUrl, 'GET', `/v1/eval-runs/${done.id}/items?limit=10`, t.keys.viewer);
      for (const e of errs.body.data) {
        expect(e.status).toBe('error');
        expect(e.error).toMatch(/unparsable judge answer/);
        expect(e.error).toMatch(quote);
        expect(e.error).toMatch(/after 3 attempts/);
        expect(e.attempts).toBe(3);
      }
      expect(fake.stats.ok).toBe(18); // 6 items × 3 attempts, the terminal error only after the last
      await assertCountersExact(s.container.orm.em.fork(), done.id);
    }
  });

  it('fails the run once, naming the provider, when the provider answers 401', async () => {
    fake.reset({ unauthorized: true, latencyMs: 20 });
    const scheduled = await run(200);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id, 60_000);
    expect(done.status).toBe('failed');
    expect(done.error_message).toMatch(/provider "fake" refused the request with HTTP 401/);
    expect(done.completed_count).toBe(0);
    await new Promise((r) => setTimeout(r, 1_500));
    // not per item: the requests stop after those already in flight
    expect(fake.stats.status401).toBeLessThanOrEqual(8 * 2);
    const after = fake.stats.requests;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(fake.stats.requests).toBe(after);
    await assertCountersExact(s.container.orm.em.fork(), done.id);
  });

  it('cancel stops spending: no provider request after the in-flight ones', async () => {
    fake.reset({ latencyMs: 150 });
    const scheduled = await run(400);
    await waitForProgress(s.baseUrl, t.keys.member, scheduled.id, 0.05, 60_000);
    const canceled = await api(s.baseUrl, 'POST', `/v1/eval-runs/${scheduled.id}/cancel`, t.keys.member);
    expect(canceled.status).toBe(202);
    await new Promise((r) => setTimeout(r, 1_500)); // the run watch notices within 500 ms; in-flight requests finish
    const settled = fake.stats.requests;
    await new Promise((r) => setTimeout(r, 2_000));
    expect(fake.stats.requests).toBe(settled);
    const run1 = await getRun(s.baseUrl, t.keys.member, scheduled.id);
    expect(run1).toMatchObject({ status: 'failed', error_message: 'canceled' });
    expect(run1.completed_count).toBeLessThan(400);
    expect(settled).toBeLessThan(400);
    await assertCountersExact(s.container.orm.em.fork(), scheduled.id);
  });

  it('refuses an eval version naming an unknown provider, and never stores a key', async () => {
    const r = await api<{ error: string }>(s.baseUrl, 'POST', '/v1/evals', t.keys.member, { name: 'x', evaluator: { ...JUDGE, provider: 'openai' } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/evaluator\.provider: unknown provider "openai" \(configured: fake\)/);
    const bad = await api<{ error: string }>(s.baseUrl, 'POST', '/v1/evals', t.keys.member, { name: 'x', evaluator: { ...JUDGE, output: { kind: 'numeric', min: 5, max: 1 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/evaluator\.output/);
    const [leak] = await sql<{ n: number }>(s.container.orm.em.fork(), `select count(*)::int as n from eval_versions where evaluator::text like ?`, [`%${SECRET_KEY}%`]);
    expect(leak?.n).toBe(0);
    await waitFor(async () => true);
  });
});
