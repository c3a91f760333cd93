/**
 * What a compare costs (issue #15): a pair's summary is computed once per
 * pair of finished runs and kept, recomputed once either run's results change
 * (a retry), never kept while a run is active and never read for another
 * tenant; a page is keyset on both runs, so a deep page reads about `limit`
 * rows of each (counted in EXPLAIN ANALYZE's rows, not timed), and paging
 * through a compare yields every paired item once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareRows, compareRowsStatement, computePairSummary, keptPairSummary, pairSummary } from '../../domain/eval-runs/compare.repository.ts';
import { sql } from '../../domain/shared/sql.ts';
import { makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, waitForRunEnd } from '../helpers/runs.ts';
import { seedCompletedRun, seedDataset } from '../helpers/seed-run.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

let s: Stack;
let a: TenantFixture;
let b: TenantFixture;

type Json = Record<string, unknown>;
const post = (path: string, key: string, body?: unknown) => api<Json>(s.baseUrl, 'POST', path, key, body);
const get = (path: string, key: string) => api<Json>(s.baseUrl, 'GET', path, key);
const em = () => s.container.orm.em.fork();

beforeAll(async () => {
  s = await startStack({ workers: true, env: { CHUNK_SIZE: '10' } });
  a = await makeTenant(s.container, 'a');
  b = await makeTenant(s.container, 'b');
});
afterAll(async () => s?.close());

async function keptRow(baseId: string, headId: string) {
  const [row] = await sql<{ tenant_id: string; base_version: string; head_version: string; computed_at: Date; summary: Json }>(
    em(),
    'select tenant_id, base_version, head_version, computed_at, summary from eval_run_comparisons where base_run_id = ? and head_run_id = ?',
    [baseId, headId],
  );
  return row;
}

describe('the summary of a pair of runs', () => {
  let ds: string;
  let base: string;
  let head: string;
  const compare = (key = a.keys.viewer, query = '') => get(`/v1/eval-runs/compare?base=${base}&head=${head}${query}`, key);

  beforeAll(async () => {
    ds = (await post('/v1/datasets', a.keys.member, { name: 'pair' })).body.id as string;
    // 40 items: i % 10 == 7 is not a number (an error for numeric_diff, a failure for exact_match), i % 3 == 0 is wrong
    const items = Array.from({ length: 40 }, (_, i) => ({ input: i, expected_output: 10, output: i % 10 === 7 ? 'NaN!' : i % 3 === 0 ? 99 : 10 }));
    await post(`/v1/datasets/${ds}/items`, a.keys.member, { items });
    const numeric = ((await post('/v1/evals', a.keys.member, { name: 'num', evaluator: { type: 'numeric_diff' } })).body.latest_version as Json).id as string;
    const exact = ((await post('/v1/evals', a.keys.member, { name: 'exact', evaluator: { type: 'exact_match' } })).body.latest_version as Json).id as string;
    base = (await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: numeric })).body.id as string;
    expect(await waitForRunEnd(s.baseUrl, a.keys.member, base)).toMatchObject({ status: 'completed', completed_count: 40, error_count: 4 });
    // the head runs over one more item: counted apart, as only in head
    await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: [{ input: 'new', expected_output: 10, output: 10 }] });
    head = (await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: exact })).body.id as string;
    expect(await waitForRunEnd(s.baseUrl, a.keys.member, head)).toMatchObject({ status: 'completed', completed_count: 41, error_count: 0 });
  });

  it('is computed once and kept: the kept summary equals the computed one, and a second read reads it', async () => {
    const first = await compare();
    expect(first.status).toBe(200);
    expect(first.body.summary).toEqual({ improved: 0, regressed: 13, unchanged: 23, not_comparable: 4, only_in_base: 0, only_in_head: 1 });
    const row = await keptRow(base, head);
    expect(row?.tenant_id).toBe(a.id);
    const computed = await computePairSummary(em(), a.id, base, head);
    expect(await keptPairSummary(em(), a.id, base, head)).toEqual(computed.summary);
    expect(row?.summary).toEqual(computed.summary);
    expect([row?.base_version, row?.head_version]).toEqual([computed.base_version, computed.head_version]);

    const second = await compare();
    expect(second.body.summary).toEqual(first.body.summary);
    expect(second.body.statistics).toEqual(first.body.statistics);
    expect((await keptRow(base, head))?.computed_at).toEqual(row?.computed_at); // not recomputed
  });

  it('is recomputed once a retry changes a run: the errors re-scored count again', async () => {
    const before = await keptRow(base, head);
    // what made the 4 items error is gone (a flaky target, say): the retry scores them 1 in base, where head has them 0 (13 regressed already: 99 is partly right for numeric_diff)
    await sql(em(), `update dataset_items set output = '10'::jsonb where dataset_id = ? and output = '"NaN!"'::jsonb`, [ds]);
    expect((await post(`/v1/eval-runs/${base}/retry`, a.keys.member)).status).toBe(202);
    expect(await waitForRunEnd(s.baseUrl, a.keys.member, base)).toMatchObject({ status: 'completed', completed_count: 40, error_count: 0 });

    const after = await compare();
    expect(after.body.summary).toEqual({ improved: 0, regressed: 17, unchanged: 23, not_comparable: 0, only_in_base: 0, only_in_head: 1 });
    expect(after.body.statistics).toMatchObject({ paired_items: 40, pass_to_fail: 4, fail_to_pass: 0 });
    const row = await keptRow(base, head);
    expect(row?.base_version).not.toBe(before?.base_version);
    expect(row?.head_version).toBe(before?.head_version);
    const computed = await computePairSummary(em(), a.id, base, head);
    expect(row?.summary).toEqual(computed.summary);
    expect(row?.base_version).toBe(computed.base_version);
  });

  it('is computed on every read and not kept while a run is active', async () => {
    const before = await keptRow(base, head);
    // head active again, in a transaction rolled back after (so no worker or reconciler ever sees it)
    await expect(
      em().transactional(async (tx) => {
        await sql(tx, `update eval_runs set status = 'running', completed_at = null, updated_at = now() where id = ?`, [head]);
        expect(await keptPairSummary(tx, a.id, base, head)).toBeUndefined();
        expect(await pairSummary(tx, a.id, base, head)).toMatchObject({ regressed: 17, unchanged: 23, not_comparable: 0 });
        expect((await computePairSummary(tx, a.id, base, head)).head_version).toBeNull();
        const [row] = await sql(tx, 'select base_version, head_version, computed_at from eval_run_comparisons where base_run_id = ? and head_run_id = ?', [base, head]);
        expect(row).toEqual({ base_version: before?.base_version, head_version: before?.head_version, computed_at: before?.computed_at }); // nothing written
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await keptPairSummary(em(), a.id, base, head)).toEqual(before?.summary);
  });

  it('is never read for another tenant, nor overwritten by one', async () => {
    const before = await keptRow(base, head);
    expect((await compare(b.keys.viewer)).status).toBe(404);
    expect(await keptPairSummary(em(), b.id, base, head)).toBeUndefined();
    // even called directly with the wrong tenant (the service checks both runs first), nothing is kept for it
    await pairSummary(em(), b.id, base, head);
    expect(await keptRow(base, head)).toEqual(before);
    expect(await keptPairSummary(em(), a.id, base, head)).toEqual(before?.summary);
  });

  it('a page at a time with a small limit yields every paired item once, in item order', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: Json } = await compare(a.keys.viewer, `&limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      seen.push(...(r.body.data as Json[]).map((d) => d.item_id as string));
      cursor = r.body.next_cursor as string | null;
      pages++;
    } while (cursor);
    expect(pages).toBe(6);
    const paired = await sql<{ item_id: string }>(
      em(),
      'select b.item_id from eval_run_items b join eval_run_items h on h.run_id = ? and h.item_id = b.item_id where b.run_id = ? order by b.item_id',
      [head, base],
    );
    expect(seen).toEqual(paired.map((p) => p.item_id));
    expect(seen).toHaveLength(40);
  });

  it('concurrent first reads of a pair compute it once: the others wait for it and read it', async () => {
    // every write of a kept summary, counted by a trigger of this test's own
    await sql(em(), 'create table compare_writes (at timestamptz not null default now())');
    await sql(em(), `create function compare_writes() returns trigger language plpgsql as $$ begin insert into compare_writes default values; return null; end $$`);
    await sql(em(), 'create trigger compare_writes after insert or update on eval_run_comparisons for each row execute function compare_writes()');
    const waiting = async () => {
      const [r] = await sql<{ n: number }>(em(), `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`);
      return r?.n ?? 0;
    };
    try {
      // the pair the other way round has never been compared; the test holds its lock until three requests wait for it
      let answers: Promise<{ status: number; body: Json }[]> | undefined;
      await em().transactional(async (tx) => {
        await sql(tx, `select pg_advisory_xact_lock(hashtextextended('eval_run_comparisons:' || ? || ':' || ?, 0))`, [head, base]);
        answers = Promise.all([1, 2, 3].map(() => get(`/v1/eval-runs/compare?base=${head}&head=${base}`, a.keys.viewer)));
        await waitFor(async () => (await waiting()) >= 3, { timeoutMs: 20_000, what: 'three compares waiting for the pair' });
      });
      const all = await (answers as Promise<{ status: number; body: Json }[]>);
      expect(all.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(all[1]?.body.summary).toEqual(all[0]?.body.summary);
      expect(all[2]?.body.statistics).toEqual(all[0]?.body.statistics);
      expect(all[0]?.body.summary).toMatchObject({ regressed: 0, improved: 17, only_in_base: 1, only_in_head: 0 });
      const [w] = await sql<{ n: number }>(em(), 'select count(*)::int as n from compare_writes');
      expect(w?.n).toBe(1);
    } finally {
      await sql(em(), 'drop trigger compare_writes on eval_run_comparisons');
      await sql(em(), 'drop function compare_writes()');
      await sql(em(), 'drop table compare_writes');
    }
  });

  it("deleting the runs' dataset deletes their kept summaries", async () => {
    expect(await keptRow(base, head)).toBeDefined();
    expect((await api(s.baseUrl, 'DELETE', `/v1/datasets/${ds}`, a.keys.owner)).status).toBeLessThan(300);
    expect(await keptRow(base, head)).toBeUndefined();
  });
});

describe('pages of a large compare', () => {
  const ITEMS = 20_000;
  let base: string;
  let head: string;

  beforeAll(async () => {
    const ev = await makeEval(s.container, a.id);
    const ds = await seedDataset(s.container, a.id, ITEMS);
    base = await seedCompletedRun(s.container, a.id, ds, ev.evalVersionId, 10);
    head = await seedCompletedRun(s.container, a.id, ds, ev.evalVersionId, 7);
    await sql(em(), 'vacuum analyze eval_run_items');
  });

  /** Rows each side's scans read in the page's statement (EXPLAIN ANALYZE: actual rows × loops per scan of eval_run_items). */
  async function rowsRead(after: string | undefined, limit: number): Promise<{ rows: number; read: Record<string, number> }> {
    const { text, params } = compareRowsStatement(base, head, after, limit);
    const [out] = await sql<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(em(), `explain (analyze, format json) ${text}`, params);
    const plan = (out as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan;
    const read: Record<string, number> = {};
    const walk = (n: PlanNode) => {
      // the partition of eval_run_items that holds the runs' month (eval_run_items_p2026_12)
      if (n['Relation Name']?.startsWith('eval_run_items_p')) read[n.Alias as string] = (read[n.Alias as string] ?? 0) + n['Actual Rows'] * n['Actual Loops'];
      for (const c of n.Plans ?? []) walk(c);
    };
    walk(plan);
    return { rows: plan['Actual Rows'], read };
  }

  it('a deep page reads about `limit` rows of each run, as the first page does', async () => {
    const [deep] = await sql<{ item_id: string }>(em(), 'select item_id from eval_run_items where run_id = ? order by item_id offset ? limit 1', [base, ITEMS - 5_000]);
    for (const after of [undefined, deep?.item_id]) {
      const { rows, read } = await rowsRead(after, 50);
      expect(rows).toBe(51); // the page and one more (is there a next page)
      expect(Object.keys(read).sort()).toEqual(['b', 'h']);
      // the statement takes limit + 1 pairs; a merge join may look one row further on a side
      expect(read.b).toBeLessThanOrEqual(52);
      expect(read.h).toBeLessThanOrEqual(52);
    }
  });

  it('with items missing on either side, the pages (and the export) hold each paired item once, in order', async () => {
    // 1 in 13 results gone from head, 1 in 17 from base: items only in one run, between paired ones
    await sql(em(), `delete from eval_run_items where run_id = ? and ('x' || substr(item_id::text, 1, 8))::bit(32)::int % 13 = 0`, [head]);
    await sql(em(), `delete from eval_run_items where run_id = ? and ('x' || substr(item_id::text, 1, 8))::bit(32)::int % 17 = 0`, [base]);
    const paired = await sql<{ item_id: string }>(
      em(),
      'select b.item_id from eval_run_items b join eval_run_items h on h.run_id = ? and h.item_id = b.item_id where b.run_id = ? order by b.item_id',
      [head, base],
    );
    expect(paired.length).toBeGreaterThan(ITEMS * 0.85);
    expect(paired.length).toBeLessThan(ITEMS * 0.95);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const rows = await compareRows(em(), base, head, after, 997);
      const page = rows.slice(0, 997);
      seen.push(...page.map((r) => r.item_id));
      if (rows.length <= 997) break;
      after = page[page.length - 1]?.item_id;
    }
    expect(seen).toEqual(paired.map((p) => p.item_id));

    const res = await fetch(`${s.baseUrl}/v1/eval-runs/compare/export?base=${base}&head=${head}&format=jsonl`, { headers: { authorization: `Bearer ${a.keys.viewer}` } });
    expect(res.status).toBe(200);
    const lines = (await res.text()).trimEnd().split('\n').map((l) => (JSON.parse(l) as { item_id: string }).item_id);
    expect(lines).toEqual(seen);
  });
});

interface PlanNode {
  'Relation Name'?: string;
  Alias?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}
