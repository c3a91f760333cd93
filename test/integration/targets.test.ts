/**
 * Targets: runs that generate each item's output with a chat-completions call
 * to a fake model (a real local HTTP server), then score it. Samples, the
 * attempts recorded against the calls the model saw, the judge on generated
 * outputs sharing one provider budget, the cache, re-scoring without a call,
 * the budget, cancel, and every refusal as { error }.
 */
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { assertCountersExact, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startFakeApp, type FakeApp } from '../helpers/fake-app.ts';
import { FAKE_JUDGE, startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';
import { api, getRun, waitForProgress, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';


/** n items "q<i>"; the fake model upper-cases, so the even ones (expected "Q<i>") pass exact_match. */
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ input: { question: `q${i}` }, expected_output: i % 2 === 0 ? `Q${i}` : `nope${i}`, metadata: { i } }));

const chat = (extra: Record<string, unknown> = {}) => ({
  type: 'chat_completion',
  provider: 'fake',
  model: 'gen-1',
  messages: [{ role: 'user', content: '{{input.question}}' }],
  ...extra,
});

let fake: FakeLlm;
let app: FakeApp;
const APP_TOKEN = 'app-token-0123456789';
let s: Stack;
let t: TenantFixture;

beforeAll(async () => {
  fake = await startFakeLlm();
  app = await startFakeApp();
  s = await startStack({
    workers: true,
    env: {
      JUDGE_CHUNK_SIZE: '10',
      JUDGE_CHUNK_PARALLELISM: '8',
      WORKER_CONCURRENCY: '4',
      RECONCILE_INTERVAL_MS: '2000',
      EVALGATE_PROVIDERS: JSON.stringify({
        fake: { base_url: fake.url, api_key: 'sk-gen-secret', concurrency: 8, rpm: 600_000, timeout_ms: 1_000, max_attempts: 3, prompt_usd_per_1m: 1000, completion_usd_per_1m: 2000 },
      }),
      EVALGATE_TARGETS: JSON.stringify({
        app: { url: app.url, headers: { authorization: `Bearer ${APP_TOKEN}` }, timeout_ms: 1_000, max_attempts: 3, concurrency: 8, allow_private: true },
        // the same app, without allow_private: the SSRF rules refuse 127.0.0.1
        guarded: { url: app.url, timeout_ms: 1_000, max_attempts: 3 },
      }),
    },
  });
  t = await makeTenant(s.container);
});
afterAll(async () => {
  await s?.close();
  await fake?.close();
  await app?.close();
});
beforeEach(() => {
  fake.reset();
  app.reset();
});

async function schedule(datasetId: string, body: Record<string, unknown>): Promise<EvalRunDto> {
  const r = await api<EvalRunDto>(s.baseUrl, 'POST', `/v1/datasets/${datasetId}/runs`, t.keys.member, body);
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return r.body;
}

type Item = { item_id: string; status: string; input: { question: string }; error: string | null; sample: null | { output: unknown; output_text: string | null; attempts: number; cached: boolean; error: string | null; raw_start: string | null; finish_reason: string | null; cost_usd: number | null; usage: { prompt_tokens: number } } };

async function allItems(runId: string): Promise<Item[]> {
  const out: Item[] = [];
  let cursor: string | null = null;
  do {
    const r: { status: number; body: { data: Item[]; next_cursor: string | null } } = await api(s.baseUrl, 'GET', `/v1/eval-runs/${runId}/items?limit=100${cursor ? `&cursor=${cursor}` : ''}`, t.keys.member);
    expect(r.status).toBe(200);
    out.push(...r.body.data);
    cursor = r.body.next_cursor;
  } while (cursor);
  return out;
}

/** Generation requests the fake saw, by prompt. */
const callsByPrompt = () => {
  const m = new Map<string, number>();
  for (const e of fake.stats.log) if (e.kind === 'generate') m.set(e.prompt ?? '', (m.get(e.prompt ?? '') ?? 0) + 1);
  return m;
};

describe('chat_completion target', () => {
  it('generates each item once, scores what it generated, and records every sample with its usage and cost', async () => {
    const ds = await makeDataset(s.container, t.id, items(30));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const run = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat(), cache: false });
    expect(run.target).toMatchObject({ type: 'chat_completion', provider: 'fake', model: 'gen-1', output: 'text' });
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', completed_count: 30, passed_count: 15, failed_count: 15, error_count: 0 });
    await assertCountersExact(s.container.orm.em.fork(), done.id);
    const listed = await allItems(done.id);
    expect(listed).toHaveLength(30);
    for (const it of listed) {
      expect(it.sample).toMatchObject({ output: it.input.question.toUpperCase(), output_text: it.input.question.toUpperCase(), attempts: 1, cached: false, error: null, finish_reason: 'stop' });
    }
    const calls = callsByPrompt();
    expect(calls.size).toBe(30);
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
    // what the provider billed is on the run, and it is what the samples cost
    expect(done.usage).toEqual({ prompt_tokens: fake.stats.promptTokens, completion_tokens: fake.stats.completionTokens });
    expect(done.cost_usd).toBeCloseTo((fake.stats.promptTokens * 1000 + fake.stats.completionTokens * 2000) / 1e6, 9);
    const costs = listed.reduce((a, i) => a + (i.sample?.cost_usd ?? 0), 0);
    expect(costs).toBeCloseTo(done.cost_usd as number, 9);
    // the export carries the samples: JSON Lines whole, CSV as columns
    const jsonl = await (await fetch(`${s.baseUrl}/v1/eval-runs/${done.id}/items/export`, { headers: { authorization: `Bearer ${t.keys.member}` } })).text();
    const lines = jsonl.trimEnd().split('\n').map((l) => JSON.parse(l) as Item);
    expect(lines.map((l) => l.sample?.output)).toEqual(listed.map((l) => l.sample?.output));
    const csv = await (await fetch(`${s.baseUrl}/v1/eval-runs/${done.id}/items/export?format=csv`, { headers: { authorization: `Bearer ${t.keys.member}` } })).text();
    const records = parse(csv, { columns: true }) as Record<string, string>[];
    expect(records.map((r) => JSON.parse(r.sample_output as string) as unknown)).toEqual(listed.map((l) => l.sample?.output));
    expect(records.every((r) => r.sample_cached === 'false' && r.sample_attempts === '1')).toBe(true);
  });

  it('judges the generated output ({{output}} is the sample) on the same provider budget', async () => {
    const ds = await makeDataset(s.container, t.id, items(20));
    const ev = await makeEval(s.container, t.id, FAKE_JUDGE);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat(), cache: false })).id, 60_000);
    expect(done).toMatchObject({ status: 'completed', passed_count: 10, failed_count: 10 });
    const kinds = fake.stats.log.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'generate')).toHaveLength(20);
    expect(kinds.filter((k) => k === 'judge')).toHaveLength(20);
    expect(fake.stats.maxInFlight).toBeLessThanOrEqual(8); // one concurrency budget for generating and judging
  });

  it('retries 5xx within max_attempts, and the attempts recorded equal the calls the model saw', async () => {
    fake.reset({ fail5xxNext: 12 });
    const ds = await makeDataset(s.container, t.id, items(10));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat(), cache: false })).id, 60_000);
    expect(done.status).toBe('completed');
    const listed = await allItems(done.id);
    const seen = new Map<string, number>();
    for (const e of fake.stats.log) seen.set(e.prompt ?? '', (seen.get(e.prompt ?? '') ?? 0) + 1);
    for (const it of listed) {
      const calls = seen.get(it.input.question) ?? 0;
      expect(it.sample?.attempts, it.input.question).toBe(calls);
      expect(calls).toBeLessThanOrEqual(3);
      if (it.sample?.error) expect(it.status).toBe('error');
    }
    expect(fake.stats.status5xx).toBe(12);
  });

  it('output "json": parses the answer; an unparsable one is retried, then the item is an error with the start of the answer', async () => {
    fake.reset({ generate: (p) => (p.endsWith('3') ? 'not json at all' : JSON.stringify({ answer: p.toUpperCase() })) });
    const ds = await makeDataset(s.container, t.id, items(10));
    const ev = await makeEval(s.container, t.id, { type: 'json_schema', schema: { type: 'object', required: ['answer'] } });
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat({ output: 'json' }), cache: false })).id, 60_000);
    expect(done).toMatchObject({ status: 'completed', error_count: 1 });
    const listed = await allItems(done.id);
    const bad = listed.find((i) => i.input.question === 'q3')!;
    expect(bad.status).toBe('error');
    expect(bad.sample).toMatchObject({ output: null, raw_start: 'not json at all', attempts: 3 });
    expect(bad.sample?.error).toMatch(/unparsable answer \(not JSON\)/);
    expect(callsByPrompt().get('q3')).toBe(3);
    const good = listed.find((i) => i.input.question === 'q4')!;
    expect(good.sample?.output).toEqual({ answer: 'Q4' });
  });

  it('messages_from "input" sends the item\'s messages; an item whose input is not messages is an error without a call', async () => {
    const ds = await makeDataset(s.container, t.id, [
      { input: [{ role: 'system', content: 'be loud' }, { role: 'user', content: 'hello' }], expected_output: 'HELLO' },
      { input: 'just a string', expected_output: 'x' },
    ]);
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const target = { type: 'chat_completion', provider: 'fake', model: 'gen-1', messages_from: 'input' };
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target, cache: false })).id, 60_000);
    expect(done).toMatchObject({ status: 'completed', passed_count: 1, error_count: 1 });
    expect(fake.stats.log.filter((e) => e.kind === 'generate')).toHaveLength(1);
    const listed = await allItems(done.id);
    const bad = listed.find((i) => i.status === 'error')!;
    expect(bad.sample).toMatchObject({ attempts: 0, output: null });
    expect(bad.error).toMatch(/messages_from "input"/);
  });
});

describe('http target', () => {
  it('calls the team\'s application once per item with the rendered body, scores output_path, and keeps its credentials out of everything', async () => {
    app.reset({ fail5xxNext: 3 });
    const ds = await makeDataset(s.container, t.id, items(12));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const target = { type: 'http', endpoint: 'app', body: { question: '{{input.question}}', raw: '{{input}}', note: 'item {{metadata.i}}' }, output_path: 'answer' };
    const run = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target, cache: false });
    expect(run.target).toEqual(target);
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', passed_count: 6, failed_count: 6, error_count: 0 });
    const first = app.requests.find((r) => (r.json as { question?: string })?.question === 'q0' && r.status === 200);
    expect(first?.json).toEqual({ question: 'q0', raw: { question: 'q0' }, note: 'item 0' });
    expect(first?.headers.authorization).toBe(`Bearer ${APP_TOKEN}`);
    const listed = await allItems(done.id);
    for (const it of listed) {
      const calls = app.requests.filter((r) => (r.json as { question?: string })?.question === it.input.question).length;
      expect(it.sample?.attempts).toBe(calls);
      expect(it.sample?.output).toBe(it.input.question.toUpperCase());
    }
    const everything = JSON.stringify({ done, listed });
    expect(everything).not.toContain(APP_TOKEN);
    expect(everything).not.toContain(app.url);
    const [stored] = await sql<{ n: number }>(s.container.orm.em.fork(), `select count(*)::int as n from eval_runs where target::text like ? or target::text like ?`, [`%${APP_TOKEN}%`, `%${app.port}%`]);
    expect(stored?.n).toBe(0);
  });

  it('an endpoint on a private address without allow_private: every item is an error naming the rule, and the app sees nothing', async () => {
    const ds = await makeDataset(s.container, t.id, items(4));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const target = { type: 'http', endpoint: 'guarded', body: { question: '{{input.question}}' }, output_path: 'answer' };
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target, cache: false })).id, 60_000);
    expect(done).toMatchObject({ status: 'completed', error_count: 4 });
    expect(app.requests).toHaveLength(0);
    const listed = await allItems(done.id);
    expect(listed[0]?.error).toMatch(/allow_private/);
  });
});

describe('failures of the target', () => {
  it('items whose generation failed after max_attempts are errors; retrying the run generates exactly those again', async () => {
    fake.reset({ fail5xxNext: 1_000 });
    const ds = await makeDataset(s.container, t.id, items(6));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat(), cache: false })).id, 60_000);
    expect(done).toMatchObject({ status: 'completed', error_count: 6 });
    expect(fake.stats.requests).toBe(6 * 3);
    for (const it of await allItems(done.id)) {
      expect(it.sample).toMatchObject({ attempts: 3, output: null });
      expect(it.error).toMatch(/HTTP 500.*after 3 attempts/);
    }
    fake.reset();
    const retried = await api<EvalRunDto>(s.baseUrl, 'POST', `/v1/eval-runs/${done.id}/retry`, t.keys.member);
    expect(retried.status).toBe(202);
    const again = await waitForRunEnd(s.baseUrl, t.keys.member, done.id, 60_000);
    expect(again).toMatchObject({ status: 'completed', error_count: 0, passed_count: 3, failed_count: 3 });
    expect(fake.stats.requests).toBe(6);
    for (const it of await allItems(done.id)) expect(it.sample).toMatchObject({ attempts: 1, error: null });
    await assertCountersExact(s.container.orm.em.fork(), done.id);
  });

  it('a provider refusing the key fails the run once, naming the provider, and stops calling', async () => {
    fake.reset({ unauthorized: true });
    const ds = await makeDataset(s.container, t.id, items(40));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat(), cache: false })).id, 60_000);
    expect(done.status).toBe('failed');
    expect(done.error_message).toMatch(/provider "fake" refused the request with HTTP 401 \(check its api_key in EVALGATE_PROVIDERS\)/);
    expect(done.error_message).not.toContain('sk-gen-secret');
    expect(fake.stats.requests).toBeLessThan(40);
  });
});

describe('the sample cache', () => {
  it('reuses a tenant\'s samples for the same target and request (no call, no cost); cache: false calls again', async () => {
    const ds = await makeDataset(s.container, t.id, items(12));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const target = chat({ model: 'cache-model' });
    const first = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target })).id, 60_000);
    expect(first.status).toBe('completed');
    const calls1 = fake.stats.requests;
    expect(calls1).toBe(12);
    const second = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target })).id, 60_000);
    expect(second).toMatchObject({ status: 'completed', passed_count: first.passed_count, failed_count: first.failed_count, usage: { prompt_tokens: 0, completion_tokens: 0 } });
    expect(second.cost_usd ?? 0).toBe(0);
    expect(fake.stats.requests).toBe(calls1);
    for (const it of await allItems(second.id)) expect(it.sample).toMatchObject({ cached: true, attempts: 0, cost_usd: 0 });
    const fresh = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target, cache: false })).id, 60_000);
    expect(fresh.status).toBe('completed');
    expect(fake.stats.requests).toBe(calls1 + 12);
    // one cache entry per request, however many runs generated it
    const [n] = await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from sample_cache where tenant_id = ?', [t.id]);
    expect(n?.n).toBeGreaterThanOrEqual(12);
    // another tenant's identical run shares nothing
    const other = await makeTenant(s.container);
    const ods = await makeDataset(s.container, other.id, items(12));
    const oev = await makeEval(s.container, other.id, { type: 'exact_match' });
    const r = await api<EvalRunDto>(s.baseUrl, 'POST', `/v1/datasets/${ods.datasetId}/runs`, other.keys.member, { eval_version_id: oev.evalVersionId, target });
    expect(r.status).toBe(202);
    const odone = await waitForRunEnd(s.baseUrl, other.keys.member, r.body.id, 60_000);
    expect(odone.status).toBe('completed');
    expect(fake.stats.requests).toBe(calls1 + 24);
  });
});

describe('re-scoring without regenerating', () => {
  it('scores another run\'s samples with a new eval version and calls nothing', async () => {
    const ds = await makeDataset(s.container, t.id, items(16));
    const exact = await makeEval(s.container, t.id, { type: 'exact_match' });
    const source = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: exact.evalVersionId, target: chat(), cache: false })).id, 60_000);
    expect(source.status).toBe('completed');
    const before = fake.stats.requests;
    const contains = await makeEval(s.container, t.id, { type: 'regex', pattern: '^Q' });
    const rescore = await schedule(ds.datasetId, { eval_version_id: contains.evalVersionId, outputs_from_run: source.id });
    expect(rescore).toMatchObject({ outputs_from_run: source.id, target: { type: 'chat_completion' }, dataset_version_id: source.dataset_version_id });
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, rescore.id, 60_000);
    expect(done).toMatchObject({ status: 'completed', passed_count: 16, usage: { prompt_tokens: 0, completion_tokens: 0 } });
    expect(fake.stats.requests).toBe(before);
    for (const it of await allItems(done.id)) expect(it.sample).toMatchObject({ output: it.input.question.toUpperCase(), attempts: 0 });
  });

  it('refuses what cannot be re-scored, each with { error }', async () => {
    const ds = await makeDataset(s.container, t.id, items(3));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const plain = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId })).id);
    const noSamples = await api<{ error: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, t.keys.member, { eval_version_id: ev.evalVersionId, outputs_from_run: plain.id });
    expect(noSamples.status).toBe(400);
    expect(noSamples.body.error).toMatch(/no samples to re-score/);
    const both = await api<{ error: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, t.keys.member, { eval_version_id: ev.evalVersionId, outputs_from_run: plain.id, target: chat() });
    expect(both.status).toBe(400);
    const missing = await api<{ error: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, t.keys.member, { eval_version_id: ev.evalVersionId, outputs_from_run: '0190a5b4-0000-7000-8000-000000000000' });
    expect(missing.status).toBe(404);
    expect(typeof missing.body.error).toBe('string');
    // another tenant's run is as missing as no run: its samples are not reachable
    const other = await makeTenant(s.container);
    const ods = await makeDataset(s.container, other.id, items(3));
    const oev = await makeEval(s.container, other.id, { type: 'exact_match' });
    const theirs = await api<EvalRunDto>(s.baseUrl, 'POST', `/v1/datasets/${ods.datasetId}/runs`, other.keys.member, { eval_version_id: oev.evalVersionId, target: chat(), cache: false });
    await waitForRunEnd(s.baseUrl, other.keys.member, theirs.body.id);
    const foreign = await api<{ error: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, t.keys.member, { eval_version_id: ev.evalVersionId, outputs_from_run: theirs.body.id });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error).not.toContain(ods.datasetId);
  });
});

describe('targets refused at scheduling', () => {
  it('answers 400 { error } for a provider not configured, {{output}} in a template, both or neither messages', async () => {
    const ds = await makeDataset(s.container, t.id, items(2));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const cases: [unknown, RegExp][] = [
      [chat({ provider: 'openai' }), /"openai" is not configured/],
      [chat({ messages: [{ role: 'user', content: 'say {{output}}' }] }), /\{\{output\}\} is what the target produces/],
      [{ type: 'chat_completion', provider: 'fake', model: 'm' }, /exactly one of messages and messages_from/],
      [chat({ messages_from: 'input' }), /exactly one of messages and messages_from/],
      [chat({ params: { temperature: 9 } }), /temperature/],
      [{ type: 'http', endpoint: 'nowhere', body: { q: '{{input}}' } }, /"nowhere" is not configured/],
      [{ type: 'shell', command: 'rm -rf /' }, /target/],
    ];
    for (const [target, message] of cases) {
      const r = await api<{ error: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, t.keys.member, { eval_version_id: ev.evalVersionId, target });
      expect(r.status, JSON.stringify(target)).toBe(400);
      expect(Object.keys(r.body)).toEqual(['error']);
      expect(r.body.error).toMatch(message);
    }
    const budget = await api<{ error: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, t.keys.member, { eval_version_id: ev.evalVersionId, target: chat(), max_cost_usd: -1 });
    expect(budget.status).toBe(400);
    expect(fake.stats.requests).toBe(0);
  });
});

describe('did it get better?', () => {
  it('compareEvalRuns: two models differing on 2 of 100 items is no significant difference; fixing 40 is better', async () => {
    // the fake answers each question correctly (upper-cased) unless the model is told to miss some
    const misses: Record<string, (i: number) => boolean> = { base: (i) => i % 2 === 1, noisy: (i) => i % 2 === 1 ? i !== 1 && i !== 3 : i === 0 || i === 2, fixed: (i) => i % 2 === 1 && i >= 80 };
    fake.reset({ generate: (p, model) => (misses[model]!(Number(p.slice(1))) ? 'wrong' : p.toUpperCase()) });
    const ds = await makeDataset(s.container, t.id, Array.from({ length: 100 }, (_, i) => ({ input: { question: `q${i}` }, expected_output: `Q${i}` })));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const runOf = async (model: string) =>
      (await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat({ model }), name: model })).id, 60_000)).id;
    const [base, noisy, fixed] = [await runOf('base'), await runOf('noisy'), await runOf('fixed')];
    type Cmp = { summary: { improved: number; regressed: number }; statistics: Record<string, unknown> };
    const cmp = async (head: string, q = '') => (await api<Cmp>(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${base}&head=${head}${q}`, t.keys.member)).body;
    const n = await cmp(noisy);
    expect(n.summary).toMatchObject({ improved: 2, regressed: 2 });
    expect(n.statistics).toMatchObject({ paired_items: 100, mean_delta: 0, p_value: 1, fail_to_pass: 2, pass_to_fail: 2, mcnemar_p_value: 1, verdict: 'no_significant_difference', method: 'paired_t' });
    const f = await cmp(fixed);
    expect(f.summary).toMatchObject({ improved: 40, regressed: 0 });
    expect(f.statistics).toMatchObject({ paired_items: 100, fail_to_pass: 40, pass_to_fail: 0, verdict: 'better' });
    expect(f.statistics.mean_delta).toBeCloseTo(0.4, 12);
    expect(f.statistics.ci_low as number).toBeGreaterThan(0);
    expect(f.statistics.mcnemar_p_value as number).toBeCloseTo(2 / 2 ** 40, 20);
    // the other way round it is worse; a bad alpha is a 400 { error }
    expect((await api<Cmp>(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${fixed}&head=${base}`, t.keys.member)).body.statistics.verdict).toBe('worse');
    const bad = await api<{ error: string }>(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${base}&head=${fixed}&alpha=2`, t.keys.member);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/alpha/);

    // the comparison streams whole as JSON Lines and CSV
    const lines = (await (await fetch(`${s.baseUrl}/v1/eval-runs/compare/export?base=${base}&head=${fixed}`, { headers: { authorization: `Bearer ${t.keys.member}` } })).text())
      .trimEnd().split('\n').map((l) => JSON.parse(l) as { change: string; delta: number });
    expect(lines).toHaveLength(100);
    expect(lines.filter((l) => l.change === 'improved')).toHaveLength(40);
    const csvRes = await fetch(`${s.baseUrl}/v1/eval-runs/compare/export?base=${base}&head=${fixed}&format=csv`, { headers: { authorization: `Bearer ${t.keys.member}` } });
    expect(csvRes.headers.get('content-type')).toMatch(/^text\/csv/);
    const records = parse(await csvRes.text(), { columns: true }) as Record<string, string>[];
    expect(Object.keys(records[0]!)).toEqual(['item_id', 'base_status', 'head_status', 'base_score', 'head_score', 'delta', 'change']);
    expect(records.filter((r) => r.change === 'improved')).toHaveLength(40);
    const badExport = await api<{ error: string }>(s.baseUrl, 'GET', `/v1/eval-runs/compare/export?base=nope&head=${fixed}`, t.keys.member);
    expect(badExport.status).toBe(400);
    expect(badExport.body.error).toMatch(/base: must be a UUID/);
    const stranger = await makeTenant(s.container);
    expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/compare/export?base=${base}&head=${fixed}`, stranger.keys.member)).status).toBe(404);

    // the gate: chance differences pass no_significant_regression (where no_new_failures would fail), a real drop fails it
    type Gate = { verdict: string; reasons: string[]; checks: { check: string; status: string }[]; stats: { significance: { verdict: string } | null } };
    const gate = async (run: string, baseline: string, policy: Record<string, unknown>) =>
      (await api<Gate>(s.baseUrl, 'POST', `/v1/eval-runs/${run}/gate`, t.keys.member, { policy, baseline: { run_id: baseline } })).body;
    const chance = await gate(noisy, base, { no_significant_regression: true, no_new_failures: true });
    expect(chance.checks).toEqual([
      expect.objectContaining({ check: 'no_new_failures', status: 'failed' }),
      expect.objectContaining({ check: 'no_significant_regression', status: 'passed' }),
    ]);
    expect(chance.stats.significance?.verdict).toBe('no_significant_difference');
    const drop = await gate(base, fixed, { no_significant_regression: true });
    expect(drop.verdict).toBe('failed');
    expect(drop.reasons[0]).toMatch(/significantly worse than baseline run .*mean score -0\.400 \(95 % CI -0\.\d+ to -0\.\d+\), p = /);
    expect((await gate(fixed, base, { no_significant_regression: true })).verdict).toBe('passed');
  });
});

describe('a hostile tenant', () => {
  it('templates that would render gigabytes are each item\'s error before anything is built; no call is made and other runs go on', async () => {
    const big = 'x'.repeat(50_000);
    const ds = await makeDataset(s.container, t.id, Array.from({ length: 20 }, (_, i) => ({ input: { question: `${big}${i}` }, expected_output: 'x' })));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    // 10,000 placeholders × 50 KB × 20 messages: 10 GB per item if it were built
    const messages = Array.from({ length: 20 }, () => ({ role: 'user', content: '{{input.question}}'.repeat(5_000) }));
    const body = { parts: Array.from({ length: 2_000 }, () => '{{input.question}}!') };
    const runs = await Promise.all([
      schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat({ messages }), cache: false }),
      schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: { type: 'http', endpoint: 'app', body }, cache: false }),
    ]);
    // another tenant's ordinary run is served meanwhile
    const other = await makeTenant(s.container);
    const ods = await makeDataset(s.container, other.id, items(10));
    const oev = await makeEval(s.container, other.id, { type: 'exact_match' });
    const r = await api<EvalRunDto>(s.baseUrl, 'POST', `/v1/datasets/${ods.datasetId}/runs`, other.keys.member, { eval_version_id: oev.evalVersionId, target: chat(), cache: false });
    expect(r.status).toBe(202);
    for (const run of runs) {
      const done = await waitForRunEnd(s.baseUrl, t.keys.member, run.id, 60_000);
      expect(done).toMatchObject({ status: 'completed', error_count: 20 });
      const listed = await allItems(done.id);
      expect(listed.every((i) => /more than|MAX_PROMPT_BYTES/.test(i.error ?? ''))).toBe(true);
    }
    expect((await waitForRunEnd(s.baseUrl, other.keys.member, r.body.id, 60_000)).status).toBe('completed');
    expect(fake.stats.log.filter((e) => (e.prompt ?? '').length > 40_000)).toHaveLength(0);
    expect(app.requests).toHaveLength(0);
    expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200);
  });
});

describe('the budget', () => {
  it('starts no call once the recorded cost reaches max_cost_usd; the run fails "budget exceeded" with its results kept', async () => {
    fake.reset({ latencyMs: 20 });
    const ds = await makeDataset(s.container, t.id, items(200));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    // each call costs ~ (2 * 1000 + 7 * 2000) / 1e6 = 0.016 USD: the budget buys ~12 calls
    const done = await waitForRunEnd(s.baseUrl, t.keys.member, (await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat(), cache: false, max_cost_usd: 0.2 })).id, 60_000);
    expect(done).toMatchObject({ status: 'failed', error_message: 'budget exceeded' });
    expect(done.cost_usd).toBeGreaterThanOrEqual(0.2);
    expect(done.completed_count).toBeLessThan(200);
    expect(done.completed_count).toBeGreaterThan(0);
    await assertCountersExact(s.container.orm.em.fork(), done.id);
    // calls in flight when the run ended land and are counted (after the run already reads failed):
    // once they have, what the provider billed is what the run says
    const counted = await waitFor(
      async () => {
        const r = await getRun(s.baseUrl, t.keys.member, done.id);
        return fake.stats.inFlight === 0 && r.usage.prompt_tokens === fake.stats.promptTokens ? r : null;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'the in-flight calls to be counted' },
    );
    expect(counted.usage.completion_tokens).toBe(fake.stats.completionTokens);
    const settled = fake.stats.requests;
    // past the ~12 calls the budget buys, only calls already started or landing before their record was seen:
    // bounded by the lanes in flight (8 per chunk, 4 chunks at once), twice over, far below the 200 items
    expect(settled).toBeLessThanOrEqual(12 + 2 * 8 * 4);
    const again = await getRun(s.baseUrl, t.keys.member, done.id);
    expect(again.completed_count).toBe(done.completed_count);
    expect(fake.stats.requests).toBe(settled);
  });
});

describe('cancel', () => {
  it('stops provider calls: none starts later than one watch interval after the cancel commits', async () => {
    fake.reset({ latencyMs: 150 });
    const ds = await makeDataset(s.container, t.id, items(300));
    const ev = await makeEval(s.container, t.id, { type: 'exact_match' });
    const run = await schedule(ds.datasetId, { eval_version_id: ev.evalVersionId, target: chat(), cache: false });
    await waitForProgress(s.baseUrl, t.keys.member, run.id, 0.05, 60_000);
    const canceled = await api<EvalRunDto>(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/cancel`, t.keys.member);
    expect(canceled.status).toBe(202);
    const committedAt = Date.parse(canceled.body.completed_at as string);
    await new Promise((r) => setTimeout(r, 2_000));
    const last = Math.max(...fake.stats.log.map((e) => e.at));
    // RUN_WATCH_MS is 500; the rest is the poll's own round trip on a loaded machine
    expect(last - committedAt).toBeLessThan(500 + 500);
    const settled = fake.stats.requests;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(fake.stats.requests).toBe(settled);
    expect(settled).toBeLessThan(300);
    await assertCountersExact(s.container.orm.em.fork(), run.id);
  });
});
