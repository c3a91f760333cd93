/**
 * Compare cost probe (issue #15): seeds two completed runs of --items results
 * over the same dataset (generate_series, test/helpers/seed-run.ts), starts
 * `main.ts api` as `npm run start:api` does, and times over HTTP
 * GET /v1/eval-runs/compare (limit 50):
 *
 * - the summary cold: the first request of the pair, which computes the
 *   summary and keeps it (its kept row deleted before each round);
 * - the first page and the page at depth --depth, warm (the summary kept);
 *
 * each the median (and max) of --rounds; the whole compare export (JSONL,
 * keyset pages of 1,000); plus, on the database alone, the
 * summary's statement (computePairSummary) and the statements of the previous
 * version (the summary over both runs on every page, the page bounded on the
 * base side only), and what EXPLAIN ANALYZE says each page statement reads.
 *
 *   node --import tsx bench/probe-compare.ts [--items=1000000] [--depth=950000] [--rounds=7]
 */
import { parseArgs } from 'node:util';
import { compareRowsStatement, computePairSummary, pairSummaryStatement } from '../domain/eval-runs/compare.repository.ts';
import { encodeCursor } from '../domain/shared/pagination.ts';
import { makeEval, makeTenant } from '../test/helpers/factories.ts';
import { seedCompletedRun, seedDataset } from '../test/helpers/seed-run.ts';
import { openBench } from './lib/context.ts';
import { machineInfo } from './lib/machine.ts';
import { sleep } from './lib/procs.ts';
import { max, median } from './lib/stats.ts';

const { values } = parseArgs({ options: { items: { type: 'string', default: '1000000' }, depth: { type: 'string', default: '950000' }, rounds: { type: 'string', default: '7' } } });
const items = Number(values.items);
const depth = Math.min(Number(values.depth), items - 1);
const rounds = Number(values.rounds);
const LIMIT = 50;

/** The previous version's summary statement (commit eb9e2a2), run on every page. */
const OLD_SUMMARY = `select count(*) filter (where b.status <> 'error' and h.status <> 'error' and h.score > b.score + 1e-9)::int as improved,
        count(*) filter (where b.status <> 'error' and h.status <> 'error' and h.score < b.score - 1e-9)::int as regressed,
        count(*) filter (where b.status <> 'error' and h.status <> 'error' and abs(h.score - b.score) <= 1e-9)::int as unchanged,
        count(*) filter (where b.status = 'error' or h.status = 'error')::int as not_comparable,
        count(*)::int as both,
        count(*) filter (where b.status <> 'error' and h.status <> 'error')::int as paired,
        avg(b.score) filter (where b.status <> 'error' and h.status <> 'error') as mean_base,
        avg(h.score) filter (where b.status <> 'error' and h.status <> 'error') as mean_head,
        avg(h.score - b.score) filter (where b.status <> 'error' and h.status <> 'error') as mean_delta,
        stddev_samp(h.score - b.score) filter (where b.status <> 'error' and h.status <> 'error') as sd_delta,
        count(*) filter (where b.status = 'failed' and h.status = 'passed')::int as fail_to_pass,
        count(*) filter (where b.status = 'passed' and h.status = 'failed')::int as pass_to_fail
   from eval_run_items b join eval_run_items h on h.run_id = $1 and h.item_id = b.item_id
  where b.run_id = $2`;
/** The previous version's page statement: bounded by the cursor on the base side only. */
const OLD_PAGE = `select b.item_id, b.status as base_status, h.status as head_status, b.score as base_score, h.score as head_score
   from eval_run_items b join eval_run_items h on h.run_id = $1 and h.item_id = b.item_id
  where b.run_id = $2 and b.item_id > $3
  order by b.item_id limit $4`;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Alias?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Hash Batches'?: number;
  Plans?: PlanNode[];
}

/** EXPLAIN (ANALYZE, BUFFERS) of a statement: its execution time, the rows each alias of eval_run_items read, its join, hash batches and buffers. */
function describePlan(out: { Plan: PlanNode; 'Execution Time': number }): string {
  const read: Record<string, number> = {};
  const nodes: string[] = [];
  let batches = 0;
  const walk = (n: PlanNode) => {
    if (/Join|Nested Loop/.test(n['Node Type'])) nodes.push(n['Node Type']);
    if (n['Hash Batches']) batches = Math.max(batches, n['Hash Batches']);
    if (n['Relation Name'] === 'eval_run_items') read[n.Alias as string] = (read[n.Alias as string] ?? 0) + n['Actual Rows'] * n['Actual Loops'];
    for (const c of n.Plans ?? []) walk(c);
  };
  walk(out.Plan);
  const rows = Object.entries(read).map(([alias, n]) => `${alias} ${n.toLocaleString('en-US')}`).join(', ');
  return `${nodes.join(' + ') || out.Plan['Node Type']}${batches ? ` (hash batches ${batches})` : ''}; rows read: ${rows}; ${out['Execution Time'].toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const b = await openBench({ smoke: false, full: false, rounds, only: null, judgeEnv: {}, genEnv: {} });
  try {
    const c = b.stack.container;
    const t = await makeTenant(c, 'probe-compare');
    const ev = await makeEval(c, t.id);
    const t0 = performance.now();
    const ds = await seedDataset(c, t.id, items);
    const base = await seedCompletedRun(c, t.id, ds, ev.evalVersionId, 10);
    const head = await seedCompletedRun(c, t.id, ds, ev.evalVersionId, 7);
    await b.pg.query('vacuum analyze dataset_items, eval_run_items, eval_runs');
    b.log(`seeded ${items} items and 2 runs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const deepAfter = (await b.pg.query<{ item_id: string }>('select item_id from eval_run_items where run_id = $1 order by item_id offset $2 limit 1', [base, depth - 1])).rows[0]?.item_id as string;

    const api = await b.startApi('api');
    await sleep(1_000);
    const path = (cursor?: string) => `/v1/eval-runs/compare?base=${base}&head=${head}&limit=${LIMIT}${cursor ? `&cursor=${cursor}` : ''}`;
    const timeGet = async (p: string): Promise<number> => {
      const s0 = performance.now();
      const res = await fetch(`${api.base}${p}`, { headers: { authorization: `Bearer ${t.keys.viewer}` } });
      const body = (await res.json()) as { data?: unknown[] };
      const took = performance.now() - s0;
      if (res.status !== 200 || body.data?.length !== LIMIT) throw new Error(`GET ${p}: ${res.status} ${JSON.stringify(body).slice(0, 300)}\n${api.proc.output().slice(-3000)}`);
      return took;
    };
    await fetch(`${api.base}/healthz`);

    const rows: string[] = [];
    const row = (what: string, xs: number[], target: number | null, note = '') => {
      const m = median(xs);
      rows.push(`| ${what} | ${xs.length} | ${m.toFixed(1)} | ${max(xs).toFixed(1)} | ${target === null ? '—' : `${target} ms: ${m <= target ? 'pass' : 'FAIL'}`} | ${note} |`);
      b.log(rows[rows.length - 1] as string);
    };

    // before: the previous version's statements, on the database alone (once each: seconds apiece)
    const oldSummary = performance.now();
    await b.pg.query(OLD_SUMMARY, [head, base]);
    row('previous: summary statement (every page)', [performance.now() - oldSummary], null, 'database only');
    const oldPage = performance.now();
    await b.pg.query(OLD_PAGE, [head, base, deepAfter, LIMIT + 1]);
    row(`previous: page statement at depth ${depth.toLocaleString('en-US')}`, [performance.now() - oldPage], null, 'database only');

    // the summary cold: the pair's first request computes and keeps it; its row is deleted before each round
    const cold: number[] = [];
    for (let i = 0; i < Math.min(rounds, 3); i++) {
      await b.pg.query('delete from eval_run_comparisons');
      cold.push(await timeGet(path()));
    }
    row('summary cold: first request of the pair (computes, keeps)', cold, 1_000, 'HTTP, first page included');
    const stmt: number[] = [];
    for (let i = 0; i < Math.min(rounds, 3); i++) {
      const s0 = performance.now();
      await computePairSummary(c.orm.em.fork(), t.id, base, head);
      stmt.push(performance.now() - s0);
    }
    row('summary statement alone (computePairSummary)', stmt, 1_000, 'database only');
    await timeGet(path()); // kept again

    const first: number[] = [];
    for (let i = 0; i < rounds; i++) first.push(await timeGet(path()));
    row('first page, summary kept', first, 50, 'HTTP');
    const cursor = encodeCursor(deepAfter, 'compare');
    const deep: number[] = [];
    for (let i = 0; i < rounds; i++) deep.push(await timeGet(path(cursor)));
    row(`page at depth ${depth.toLocaleString('en-US')}, summary kept`, deep, 50, 'HTTP');

    // the compare export: every paired item, a keyset page of 1,000 at a time
    const e0 = performance.now();
    const res = await fetch(`${api.base}/v1/eval-runs/compare/export?base=${base}&head=${head}&format=jsonl`, { headers: { authorization: `Bearer ${t.keys.viewer}` } });
    let lines = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) for (const x of chunk) if (x === 10) lines++;
    const exportMs = performance.now() - e0;
    if (res.status !== 200 || lines !== items) throw new Error(`compare export: ${res.status}, ${lines} lines`);
    row(`compare export jsonl, ${lines.toLocaleString('en-US')} rows (${Math.round(lines / (exportMs / 1000)).toLocaleString('en-US')} rows/s)`, [exportMs], null, 'HTTP, whole stream');
    await api.proc.stop();

    // why: what each statement reads
    const explain = async (text: string, params: unknown[]) =>
      (await b.pg.query<{ 'QUERY PLAN': [{ Plan: PlanNode; 'Execution Time': number }] }>(`explain (analyze, buffers, format json) ${text}`, params)).rows[0]?.['QUERY PLAN'][0] as {
        Plan: PlanNode;
        'Execution Time': number;
      };
    const numbered = (q: string) => {
      let n = 0;
      return q.replace(/\?/g, () => `$${++n}`);
    };
    const pageNow = compareRowsStatement(base, head, deepAfter, LIMIT);
    const firstNow = compareRowsStatement(base, head, undefined, LIMIT);
    const plans = [
      `- page at depth ${depth.toLocaleString('en-US')}, now: ${describePlan(await explain(numbered(pageNow.text), pageNow.params))}`,
      `- first page, now: ${describePlan(await explain(numbered(firstNow.text), firstNow.params))}`,
      `- page at depth ${depth.toLocaleString('en-US')}, previous: ${describePlan(await explain(OLD_PAGE, [head, base, deepAfter, LIMIT + 1]))}`,
      `- summary, previous: ${describePlan(await explain(OLD_SUMMARY, [head, base]))}`,
    ];
    const now = pairSummaryStatement(t.id, base, head);
    plans.push(`- summary, now: ${describePlan(await explain(numbered(now.text), now.params))}`);
    const m = await machineInfo(b.stack.env.DATABASE_URL, b.stack.redis);
    process.stdout.write(
      `\n${items.toLocaleString('en-US')} vs ${items.toLocaleString('en-US')} results, limit ${LIMIT}; ${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB.toFixed(0)} GiB, ` +
        `PostgreSQL ${m.postgres}, Node ${m.node}, load ${m.loadAvg}, ${m.date}\n\n` +
        `| measured | rounds | median ms | max ms | target | how |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n\n${plans.join('\n')}\n`,
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
