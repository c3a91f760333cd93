/**
 * Lists at 10 M results (issue #16): seeds one dataset of --items items and
 * --runs completed runs over it (generate_series, test/helpers/seed-run.ts:
 * --runs × --items rows in eval_run_items), vacuum analyze, starts
 * `main.ts api` as `npm run start:api` does and times over HTTP with a viewer
 * key, warm, the median (and max) of --rounds each:
 *
 * - GET /v1/eval-runs/{id}/items?limit=50: first page, a page at depth
 *   items/2 and at 0.95 × items, and the same with status=failed;
 * - GET /v1/datasets/{id}/runs (the dataset's runs) and GET /v1/datasets/{id}/items
 *   first and deep page;
 * - GET /v1/eval-runs/compare (limit 50): the summary cold (first request of
 *   the pair, its kept row deleted before each round), then first and deep
 *   page once the summary is kept.
 *
 * A deep page's cursor is the item id at that depth, read with SQL and encoded
 * as the server does (encodeCursor with the list's tag). For each page, the
 * statement the server runs (captured from the repository function itself, on
 * the bench's container, so the text cannot drift from the code) is run again
 * under EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON): its joins, the rows each
 * table read and the shared buffers it touched; for the run-item pages also
 * with a merge join forced (nested loop and hash join off: the plan that reads
 * dataset_items in id order), and the statement before the item join was
 * bounded by the dataset and the cursor, both ways.
 *
 *   node --import tsx bench/probe-10m.ts [--runs=10] [--items=1000000] [--rounds=7]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { listItemsPage } from '../domain/datasets/dataset.repository.ts';
import { compareRowsStatement } from '../domain/eval-runs/compare.repository.ts';
import { listRunItemRows, listRunRows } from '../domain/eval-runs/eval-run.repository.ts';
import { encodeCursor } from '../domain/shared/pagination.ts';
import { makeEval, makeTenant } from '../test/helpers/factories.ts';
import { seedCompletedRun, seedDataset } from '../test/helpers/seed-run.ts';
import { openBench } from './lib/context.ts';
import { machineInfo } from './lib/machine.ts';
import { sleep } from './lib/procs.ts';
import { max, median } from './lib/stats.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '10' }, items: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '7' } },
});
const runs = Math.max(2, Number(values.runs));
const items = Number(values.items);
const rounds = Math.max(5, Number(values.rounds));
const LIMIT = 50;
const MAX_PAGE_BYTES = 4 * 1024 * 1024;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Actual Total Time'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}
interface Explained {
  Plan: PlanNode;
  'Execution Time': number;
}

/** Joins, rows read per table (actual rows × loops of its scans), buffers (hit + read) and time of an EXPLAIN ANALYZE. */
function describePlan(out: Explained): { joins: string; rows: string; buffers: number; ms: number; readPerTable: Record<string, number> } {
  const read: Record<string, number> = {};
  const joins: string[] = [];
  const walk = (n: PlanNode) => {
    if (/Join|Nested Loop/.test(n['Node Type'])) joins.push(n['Node Type']);
    // a partition (eval_run_items_p2026_12) counts as its table
    const rel = n['Relation Name']?.replace(/_p(\d{4}_\d{2}|_before)$/, '');
    if (rel) read[rel] = (read[rel] ?? 0) + n['Actual Rows'] * n['Actual Loops'];
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(out.Plan);
  return {
    joins: joins.join(' + ') || out.Plan['Node Type'],
    rows: Object.entries(read)
      .map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`)
      .join(', '),
    buffers: (out.Plan['Shared Hit Blocks'] ?? 0) + (out.Plan['Shared Read Blocks'] ?? 0),
    ms: out['Execution Time'],
    readPerTable: read,
  };
}

/**
 * The statements `fn` sends through pg (the ORM's connections are pg clients): pg.Client's query is wrapped while it runs.
 * The repository functions number their parameters ($n) themselves (domain/shared/sql.ts).
 */
async function capture(fn: () => Promise<unknown>, match: RegExp): Promise<{ text: string; params: unknown[] }> {
  const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
  const original = proto.query;
  let got: { text: string; params: unknown[] } | undefined;
  proto.query = function (this: unknown, ...a: unknown[]) {
    const q = a[0] as { text?: string; values?: unknown[] } | string;
    const text = typeof q === 'string' ? q : q.text;
    if (text && match.test(text)) got = { text, params: typeof q === 'string' ? ((a[1] as unknown[]) ?? []) : (q.values ?? []) };
    return original.apply(this, a);
  };
  try {
    await fn();
  } finally {
    proto.query = original;
  }
  if (!got) throw new Error(`no statement matching ${match} was sent`);
  return got;
}

async function main(): Promise<void> {
  const b = await openBench({ smoke: false, full: false, rounds, only: null, judgeEnv: {}, genEnv: {} });
  try {
    const c = b.stack.container;
    const t = await makeTenant(c, 'probe-10m');
    const ev = await makeEval(c, t.id);
    const t0 = performance.now();
    const ds = await seedDataset(c, t.id, items);
    b.log(`seeded ${items.toLocaleString('en-US')} items in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const runIds: string[] = [];
    for (let i = 0; i < runs; i++) {
      const r0 = performance.now();
      // failEvery 10 for every run but one (the compare's head): the pair differs on some items
      runIds.push(await seedCompletedRun(c, t.id, ds, ev.evalVersionId, i === 1 ? 7 : 10));
      b.log(`run ${i + 1}/${runs} seeded in ${((performance.now() - r0) / 1000).toFixed(1)} s`);
    }
    const v0 = performance.now();
    await b.pg.query('vacuum analyze dataset_items, eval_run_items, eval_runs');
    const total = Number((await b.pg.query<{ n: string }>('select count(*) as n from eval_run_items')).rows[0]?.n);
    const size = (await b.pg.query<{ s: string }>(`select pg_size_pretty(pg_total_relation_size('eval_run_items')) as s`)).rows[0]?.s;
    b.log(`vacuum analyze ${((performance.now() - v0) / 1000).toFixed(1)} s; eval_run_items: ${total.toLocaleString('en-US')} rows, ${size}; seeding total ${((performance.now() - t0) / 1000).toFixed(0)} s`);

    // the run measured is the last seeded (its rows are the newest of the table); the compare pair is runs 0 and 1
    const run = runIds[runIds.length - 1] as string;
    const [base, head] = runIds as [string, string];
    const idAt = async (depth: number, status?: string) =>
      (
        await b.pg.query<{ item_id: string }>(
          `select item_id from eval_run_items where run_id = $1 ${status ? 'and status = $3' : ''} order by item_id offset $2 limit 1`,
          status ? [run, depth - 1, status] : [run, depth - 1],
        )
      ).rows[0]?.item_id as string;
    const depths = [Math.floor(items / 2), Math.floor(items * 0.95)];
    const failedTotal = Math.floor(items / 10);
    const afterIds = await Promise.all(depths.map((d) => idAt(d)));
    const failedAfter = await Promise.all(depths.map((d) => idAt(Math.floor((d * failedTotal) / items), 'failed')));

    const api = await b.startApi('api');
    await sleep(1_000);
    const timeGet = async (p: string, expect = LIMIT): Promise<number> => {
      const s0 = performance.now();
      const res = await fetch(`${api.base}${p}`, { headers: { authorization: `Bearer ${t.keys.viewer}` } });
      const body = (await res.json()) as { data?: unknown[] };
      const took = performance.now() - s0;
      if (res.status !== 200 || body.data?.length !== expect) throw new Error(`GET ${p}: ${res.status} ${JSON.stringify(body).slice(0, 300)}\n${api.proc.output().slice(-3000)}`);
      return took;
    };
    const measure = async (p: string, expect = LIMIT): Promise<number[]> => {
      await timeGet(p, expect); // warm
      const xs: number[] = [];
      for (let i = 0; i < rounds; i++) xs.push(await timeGet(p, expect));
      return xs;
    };
    const explainIn = async (s: { text: string; params: unknown[] }, settings: readonly string[] = []): Promise<Explained> => {
      const client = await b.pg.connect();
      try {
        await client.query('begin');
        for (const x of settings) await client.query(`set local ${x}`);
        return (await client.query<{ 'QUERY PLAN': [Explained] }>(`explain (analyze, buffers, format json) ${s.text}`, s.params)).rows[0]?.['QUERY PLAN'][0] as Explained;
      } finally {
        await client.query('rollback');
        client.release();
      }
    };
    const explain = async (s: { text: string; params: unknown[] }) => describePlan(await explainIn(s));
    /** The page: the subtree under the statement's Limit (the keys and sizes of limit + 1 rows, where results meet dataset_items). */
    const pageOf = (out: Explained): Explained => {
      const find = (n: PlanNode): PlanNode | undefined => (n['Node Type'] === 'Limit' ? n : (n.Plans ?? []).map(find).find((x) => x !== undefined));
      const page = find(out.Plan) ?? out.Plan;
      // the time is the page's own (its Limit node's), not the statement's: forced off, the lookups after the page are merge joins too
      return { Plan: page, 'Execution Time': page['Actual Total Time'] ?? out['Execution Time'] };
    };
    const MERGE = ['enable_nestloop = off', 'enable_hashjoin = off'];
    /**
     * The statement before the item join was bounded (commit fe88a41): the bound replaced by conditions on its own
     * parameters that are always true (the parameter numbers stay those of the statement).
     */
    const previous = (s: { text: string; params: unknown[] }) => ({
      text: s.text.replace(/and i\.dataset_id = \(select dataset_id from eval_runs where id = (\$\d+)\)( and i\.id > (\$\d+))?/, (_, a: string, _b: string, c?: string) =>
        `and ${a}::uuid is not null${c ? ` and ${c}::uuid is not null` : ''}`,
      ),
      params: s.params,
    });
    const whyRunItems = async (what: string, stmt: { text: string; params: unknown[] }) => {
      const forced = describePlan(pageOf(await explainIn(stmt, MERGE)));
      const prev = describePlan(await explainIn(previous(stmt)));
      const prevForced = describePlan(pageOf(await explainIn(previous(stmt), MERGE)));
      plans.push(
        `  - ${what}, merge join forced, the page: ${forced.joins}; rows read: ${forced.rows}; ${forced.ms.toFixed(2)} ms\n` +
          `  - ${what}, previous statement (item join unbounded), planner's choice: ${prev.joins}; rows read: ${prev.rows}; buffers ${prev.buffers.toLocaleString('en-US')}; ${prev.ms.toFixed(2)} ms\n` +
          `  - ${what}, previous statement, merge join forced, the page: ${prevForced.joins}; rows read: ${prevForced.rows}; ${prevForced.ms.toFixed(2)} ms`,
      );
    };

    const rows: string[] = [];
    const plans: string[] = [];
    const row = async (what: string, xs: number[], target: number | null, stmt?: { text: string; params: unknown[] }) => {
      const m = median(xs);
      let planCells = '— | — | —';
      if (stmt) {
        const p = await explain(stmt);
        planCells = `${p.joins} | ${p.rows} | ${p.buffers.toLocaleString('en-US')}`;
        plans.push(`- ${what}: ${p.joins}; rows read: ${p.rows}; buffers ${p.buffers.toLocaleString('en-US')}; ${p.ms.toFixed(2)} ms in the database`);
      }
      rows.push(`| ${what} | ${xs.length} | ${m.toFixed(1)} | ${max(xs).toFixed(1)} | ${target === null ? '—' : `≤ ${target} ms: ${m <= target ? 'pass' : 'FAIL'}`} | ${planCells} |`);
      b.log(rows[rows.length - 1] as string);
    };
    const em = () => c.orm.em.fork();
    const runItemsStmt = (status: 'failed' | undefined, after: string | undefined) =>
      capture(() => listRunItemRows(em(), run, status, after, LIMIT, MAX_PAGE_BYTES), /with page as[\s\S]*eval_run_items r join dataset_items/);

    // run items, unfiltered and status=failed
    const itemsPath = (status: string | undefined, after?: string) =>
      `/v1/eval-runs/${run}/items?limit=${LIMIT}${status ? `&status=${status}` : ''}${after ? `&cursor=${encodeCursor(after, 'run-items')}` : ''}`;
    const runItemsRow = async (what: string, status: 'failed' | undefined, after: string | undefined) => {
      const stmt = await runItemsStmt(status, after);
      await row(what, await measure(itemsPath(status, after)), 50, stmt);
      await whyRunItems(what, stmt);
    };
    await runItemsRow('run items, first page', undefined, undefined);
    for (const [i, d] of depths.entries()) await runItemsRow(`run items, depth ${d.toLocaleString('en-US')}`, undefined, afterIds[i]);
    await runItemsRow('run items status=failed, first page', 'failed', undefined);
    for (const [i, d] of depths.entries())
      await runItemsRow(`run items status=failed, depth ${d.toLocaleString('en-US')} (${Math.floor((d * failedTotal) / items).toLocaleString('en-US')} failed)`, 'failed', failedAfter[i]);

    // the dataset's runs
    await row(
      `dataset runs (${runs} runs)`,
      await measure(`/v1/datasets/${ds}/runs?limit=${LIMIT}`, Math.min(runs, LIMIT)),
      50,
      await capture(() => listRunRows(em(), t.id, ds, undefined, undefined, LIMIT), /from eval_runs where dataset_id/),
    );

    // the dataset's items
    const dsItemsPath = (after?: string) => `/v1/datasets/${ds}/items?limit=${LIMIT}${after ? `&cursor=${encodeCursor(after, 'dataset-items')}` : ''}`;
    const dsItemsStmt = (after?: string) => capture(() => listItemsPage(em(), ds, 1, after, LIMIT, MAX_PAGE_BYTES), /with page as[\s\S]*from dataset_items d/);
    await row('dataset items, first page', await measure(dsItemsPath()), 50, await dsItemsStmt());
    await row(`dataset items, depth ${(depths[1] as number).toLocaleString('en-US')}`, await measure(dsItemsPath(afterIds[1])), 50, await dsItemsStmt(afterIds[1]));

    // compare: the summary cold (kept row deleted before each round), then pages with it kept
    const comparePath = (after?: string) => `/v1/eval-runs/compare?base=${base}&head=${head}&limit=${LIMIT}${after ? `&cursor=${encodeCursor(after, 'compare')}` : ''}`;
    const cold: number[] = [];
    for (let i = 0; i < 3; i++) {
      await b.pg.query('delete from eval_run_comparisons');
      cold.push(await timeGet(comparePath()));
    }
    await row('compare, summary cold (first request of the pair: computes and keeps it)', cold, null);
    const numbered = (s: { text: string; params: unknown[] }) => {
      let n = 0;
      return { text: s.text.replace(/\?/g, () => `$${++n}`), params: s.params };
    };
    await row('compare, first page (summary kept)', await measure(comparePath()), 50, numbered(compareRowsStatement(base, head, undefined, LIMIT)));
    const compareAfter = (
      await b.pg.query<{ item_id: string }>('select item_id from eval_run_items where run_id = $1 order by item_id offset $2 limit 1', [base, (depths[1] as number) - 1])
    ).rows[0]?.item_id as string;
    await row(
      `compare, depth ${(depths[1] as number).toLocaleString('en-US')} (summary kept)`,
      await measure(comparePath(compareAfter)),
      50,
      numbered(compareRowsStatement(base, head, compareAfter, LIMIT)),
    );
    await api.proc.stop();

    const m = await machineInfo(b.stack.env.DATABASE_URL, b.stack.redis);
    process.stdout.write(
      `\n${total.toLocaleString('en-US')} rows in eval_run_items (${size}; ${runs} runs × ${items.toLocaleString('en-US')} items), limit ${LIMIT}; ` +
        `${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(0)} GiB, PostgreSQL ${m.postgres}, Node ${m.node}, load ${m.loadAvg}, ${m.date}\n\n` +
        `| measured (HTTP, warm) | rounds | median ms | max ms | target | joins (EXPLAIN) | rows read per table | buffers |\n|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n\n${plans.join('\n')}\n`,
    );
  } finally {
    await b.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
