/**
 * compareEvalRuns at its edges, on real Postgres, Redis and workers: runs of
 * different dataset versions and eval versions pair by item id (items in one
 * run only are counted apart), a head whose every item errored, and a head
 * over no items. The statistics there are worked out by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

type Json = Record<string, unknown>;
type Compare = { summary: Json; statistics: Json; data: Json[]; next_cursor: string | null };

let s: Stack;
let t: TenantFixture;

beforeAll(async () => {
  s = await startStack({ workers: true, env: { CHUNK_SIZE: '50', RECONCILE_INTERVAL_MS: '1000' } });
  t = await makeTenant(s.container);
});
afterAll(async () => s?.close());

const run = async (datasetId: string, evalVersionId: string) =>
  waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, datasetId, evalVersionId)).id);

async function compare(base: string, head: string, query = ''): Promise<Compare> {
  const r = await api<Compare>(s.baseUrl, 'GET', `/v1/eval-runs/compare?base=${base}&head=${head}&limit=1000${query}`, t.keys.viewer);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

describe('compareEvalRuns edges', () => {
  it('pairs runs of other dataset and eval versions by item id, counting the items of one run apart', async () => {
    // v1: 10 items, outputs a0..a9 against expected a0..a9 except item 9 ("x")
    const ds = await makeDataset(s.container, t.id, Array.from({ length: 10 }, (_, i) => ({ input: i, expected_output: `a${i}`, output: i === 9 ? 'x' : `a${i}` })));
    const exact = await makeEval(s.container, t.id);
    const base = await run(ds.datasetId, exact.evalVersionId);
    // v2 adds two items, v3 drops item 0: the head run (another eval version) has 11 items, 9 of them shared
    const listed = await api<{ data: { id: string }[] }>(s.baseUrl, 'GET', `/v1/datasets/${ds.datasetId}/items?limit=100`, t.keys.viewer);
    const first = listed.body.data[0]!.id;
    expect((await api(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/items`, t.keys.member, { items: [{ input: 'n1', expected_output: 'b', output: 'b' }, { input: 'n2', expected_output: 'b', output: 'c' }] })).status).toBe(201);
    expect((await api(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/items/delete`, t.keys.member, { item_ids: [first] })).status).toBe(201);
    const lenient = await makeEval(s.container, t.id, { type: 'levenshtein', threshold: 0.5 });
    const head = await run(ds.datasetId, lenient.evalVersionId);
    expect(head.item_count).toBe(11);
    expect(head.dataset_version_id).not.toBe(base.dataset_version_id);

    const c = await compare(base.id, head.id);
    // shared: items 1..9; items 1..8 score 1 in both, item 9 ("x" against "a9"): 0 in base, levenshtein 1 − 2/2 = 0 in head
    expect(c.summary).toEqual({ improved: 0, regressed: 0, unchanged: 9, not_comparable: 0, only_in_base: 1, only_in_head: 2 });
    expect(c.data.map((d) => d.item_id)).not.toContain(first);
    expect(c.data).toHaveLength(9);
    expect(c.statistics).toMatchObject({ paired_items: 9, mean_delta: 0, p_value: 1, verdict: 'no_significant_difference' });
  });

  it('a head whose every item errored pairs nothing: all not comparable, no statistic, no verdict either way', async () => {
    const ds = await makeDataset(s.container, t.id, Array.from({ length: 20 }, (_, i) => ({ input: i, expected_output: '5', output: 'not a number' })));
    const base = await run(ds.datasetId, (await makeEval(s.container, t.id, { type: 'contains', value: 'not' })).evalVersionId);
    const head = await run(ds.datasetId, (await makeEval(s.container, t.id, { type: 'numeric_diff' })).evalVersionId);
    expect(head).toMatchObject({ error_count: 20, mean_score: null });
    const c = await compare(base.id, head.id);
    expect(c.summary).toEqual({ improved: 0, regressed: 0, unchanged: 0, not_comparable: 20, only_in_base: 0, only_in_head: 0 });
    expect(c.statistics).toMatchObject({ paired_items: 0, mean_base: null, mean_head: null, mean_delta: null, ci_low: null, ci_high: null, p_value: null, method: 'none', fail_to_pass: 0, pass_to_fail: 0, mcnemar_p_value: 1, verdict: 'no_significant_difference' });
    expect(c.data.every((d) => d.change === 'not_comparable' && d.delta === null)).toBe(true);
  });

  it('a head over no items: everything is in the base only, and nothing is decided', async () => {
    const ds = await makeDataset(s.container, t.id, Array.from({ length: 5 }, (_, i) => ({ input: i, expected_output: 'a', output: 'a' })));
    const ev = await makeEval(s.container, t.id);
    const base = await run(ds.datasetId, ev.evalVersionId);
    const listed = await api<{ data: { id: string }[] }>(s.baseUrl, 'GET', `/v1/datasets/${ds.datasetId}/items?limit=100`, t.keys.viewer);
    expect((await api(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/items/delete`, t.keys.member, { item_ids: listed.body.data.map((d) => d.id) })).status).toBe(201);
    const head = await run(ds.datasetId, ev.evalVersionId);
    expect(head).toMatchObject({ status: 'completed', item_count: 0 });
    const c = await compare(base.id, head.id);
    expect(c.summary).toEqual({ improved: 0, regressed: 0, unchanged: 0, not_comparable: 0, only_in_base: 5, only_in_head: 0 });
    expect(c.statistics).toMatchObject({ paired_items: 0, method: 'none', verdict: 'no_significant_difference' });
    expect(c.data).toEqual([]);
    expect(c.next_cursor).toBeNull();
    // and the other way round
    expect((await compare(head.id, base.id)).summary).toMatchObject({ only_in_base: 0, only_in_head: 5 });
  });

  it('one shared item (n = 1) gives its difference but no interval and no verdict', async () => {
    const ds = await makeDataset(s.container, t.id, [{ input: 1, expected_output: 'abcd', output: 'abcx' }]);
    const base = await run(ds.datasetId, (await makeEval(s.container, t.id)).evalVersionId);
    const head = await run(ds.datasetId, (await makeEval(s.container, t.id, { type: 'levenshtein', threshold: 0.5 })).evalVersionId);
    const c = await compare(base.id, head.id, '&alpha=0.2');
    // exact_match 0; levenshtein 1 − 1/4 = 0.75
    expect(c.statistics).toMatchObject({ alpha: 0.2, paired_items: 1, mean_base: 0, mean_head: 0.75, method: 'none', ci_low: null, p_value: null, verdict: 'no_significant_difference' });
    expect(c.statistics.mean_delta).toBeCloseTo(0.75, 12);
    expect(c.summary).toMatchObject({ improved: 1 });
  });
});
