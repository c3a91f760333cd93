/**
 * A run's item list reads O(limit) rows at any depth, whichever join the
 * planner picks for results ⋈ dataset_items (issue #16): the join to
 * dataset_items is bounded by the run's dataset and the cursor, so a merge
 * join (which walks dataset_items in id order) starts at the page rather than
 * at the dataset's first item. Counted in EXPLAIN ANALYZE's rows (actual rows
 * × loops per scan), not timed: with the planner's own choice, and with a
 * merge join forced (nested loop and hash join off), the plan that read
 * O(depth) items before the bound.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRunItemRows } from '../../domain/eval-runs/eval-run.repository.ts';
import { sql } from '../../domain/shared/sql.ts';
import { makeEval, makeTenant } from '../helpers/factories.ts';
import { seedCompletedRun, seedDataset } from '../helpers/seed-run.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

const ITEMS = 20_000;
const LIMIT = 50;
const FAIL_EVERY = 10;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

let s: Stack;
let db: pg.Client;
let run: string;
const em = () => s.container.orm.em.fork();

beforeAll(async () => {
  s = await startStack({ workers: false, http: false });
  const t = await makeTenant(s.container, 'plan');
  const ev = await makeEval(s.container, t.id);
  // another dataset's items first: the bound is the run's dataset, not the table
  const other = await seedDataset(s.container, t.id, ITEMS);
  await seedCompletedRun(s.container, t.id, other, ev.evalVersionId, FAIL_EVERY);
  const ds = await seedDataset(s.container, t.id, ITEMS);
  run = await seedCompletedRun(s.container, t.id, ds, ev.evalVersionId, FAIL_EVERY);
  await sql(em(), 'vacuum analyze dataset_items, eval_run_items, eval_runs');
  db = new pg.Client({ connectionString: s.env.DATABASE_URL });
  await db.connect();
}, 120_000);
afterAll(async () => {
  await db?.end();
  await s?.close();
});

/** The statement listRunItemRows sends (captured at pg's client: the ORM's connections are pg clients), its parameters numbered. */
async function statement(status: 'failed' | undefined, after: string | undefined): Promise<{ text: string; values: unknown[] }> {
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;
  let got: { text: string; values: unknown[] } | undefined;
  proto.query = function (this: unknown, ...a: unknown[]) {
    const q = a[0] as { text?: string; values?: unknown[] };
    if (typeof q === 'object' && q.text && /with page as/.test(q.text)) got = { text: q.text, values: q.values ?? [] };
    return original.apply(this, a);
  };
  try {
    await listRunItemRows(em(), run, status, after, LIMIT, 4 * 1024 * 1024);
  } finally {
    proto.query = original;
  }
  if (!got) throw new Error('listRunItemRows sent no statement');
  return got;
}

/**
 * Rows read per table under EXPLAIN ANALYZE, with `settings` set for that transaction: by the whole statement, or
 * by the page (the subtree under its Limit: the keys and sizes of limit + 1 results, where results meet dataset_items).
 */
async function rowsRead(
  status: 'failed' | undefined,
  after: string | undefined,
  settings: readonly string[],
  scope: 'statement' | 'page',
): Promise<{ rows: number; read: Record<string, number> }> {
  const { text, values } = await statement(status, after);
  await db.query('begin');
  try {
    for (const x of settings) await db.query(`set local ${x}`);
    const res = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`explain (analyze, format json) ${text}`, values);
    const plan = (res.rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan;
    const read: Record<string, number> = {};
    const walk = (n: PlanNode) => {
      // a partition (eval_run_items_p2026_12) counts as its table
      const rel = n['Relation Name']?.replace(/_p(\d{4}_\d{2}|_before)$/, '');
      if (rel) read[rel] = (read[rel] ?? 0) + n['Actual Rows'] * n['Actual Loops'];
      for (const c of n.Plans ?? []) walk(c);
    };
    const find = (n: PlanNode): PlanNode | undefined => (n['Node Type'] === 'Limit' ? n : (n.Plans ?? []).map(find).find((x) => x !== undefined));
    const page = find(plan);
    if (!page) throw new Error('no Limit node (the page) in the plan');
    walk(scope === 'page' ? page : plan);
    return { rows: plan['Actual Rows'], read };
  } finally {
    await db.query('rollback');
  }
}

const itemAt = async (offset: number, status?: string) =>
  (
    await db.query<{ item_id: string }>(
      `select item_id from eval_run_items where run_id = $1 ${status ? 'and status = $3' : ''} order by item_id offset $2 limit 1`,
      status ? [run, Math.floor(offset), status] : [run, Math.floor(offset)],
    )
  ).rows[0]?.item_id as string;

// The planner's choice, counted over the whole statement (the rows of the page are then looked up by key); and the page's
// join forced to a merge join, counted under the page's Limit (forced there, the lookups of the page's ≤ limit + 1 rows
// after it become merge joins too, which the planner never picks for a known ≤ limit + 1 rows).
describe.each([
  ['the planner’s choice', [] as string[], 'statement' as const],
  ['a merge join forced', ['enable_nestloop = off', 'enable_hashjoin = off'], 'page' as const],
])('a page of a run’s items, %s', (_, settings, scope) => {
  it('reads about `limit` results and items at any depth', async () => {
    for (const after of [undefined, await itemAt(ITEMS / 2), await itemAt((2 * ITEMS) / 3)]) {
      const { rows, read } = await rowsRead(undefined, after, settings, scope);
      expect(rows).toBe(LIMIT + 1); // the page and one more (is there a next page)
      // the page's keys (limit + 1, a merge join may look one further) and the page's rows again, by key
      expect(read.eval_run_items).toBeLessThanOrEqual(2 * (LIMIT + 2));
      expect(read.dataset_items).toBeLessThanOrEqual(2 * (LIMIT + 2));
    }
  });

  it('filtered by status, reads the items between the page’s first and last failed result, not those before the cursor', async () => {
    const failed = ITEMS / FAIL_EVERY;
    for (const after of [undefined, await itemAt(failed / 2, 'failed'), await itemAt((2 * failed) / 3, 'failed')]) {
      const { rows, read } = await rowsRead('failed', after, settings, scope);
      expect(rows).toBe(LIMIT + 1);
      expect(read.eval_run_items).toBeLessThanOrEqual(2 * (LIMIT + 2));
      // 1 in FAIL_EVERY results failed: a merge join walks about FAIL_EVERY items per failed result of the page
      expect(read.dataset_items).toBeLessThanOrEqual(FAIL_EVERY * 2 * (LIMIT + 2) + LIMIT + 2);
    }
  });
});
