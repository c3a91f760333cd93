/**
 * Where a run's PostgreSQL CPU goes, statement by statement, without workers
 * or queues: on a fresh database with an N-item dataset (default 100,000),
 * it cuts a run into chunks (startRun), loads every chunk's items
 * (loadChunk + loadPendingItems) and records every chunk's results
 * (recordResults: one statement per chunk) with 1 and with 4 concurrent
 * connections, then again after dropping eval_run_items' foreign key to
 * eval_runs (in this throw-away database only). PostgreSQL CPU is read from
 * /proc for the database's backends, so run it on the database's machine.
 *
 *   node --import tsx bench/probe-record.ts [items]
 */
import pg from 'pg';
import { compileEvaluator, type EvaluatorConfig } from '../jobs/evaluators/index.ts';
import { loadChunk, loadPendingItems, recordResults, startRun, type ChunkContext, type ItemResult } from '../jobs/eval-runs/run-lifecycle.ts';
import { insertPendingRun } from '../routers/eval-runs/eval-run.service.ts';
import { sql } from '../server/sql.ts';
import { items, makeDataset, makeEval, makeTenant } from '../test/helpers/factories.ts';
import { startStack, uniqueName } from '../test/helpers/stack.ts';
import { cpuMs } from './lib/procs.ts';

const N = Number(process.argv[2] ?? 100_000);
const CHUNK = 500;
const s = await startStack({
  workers: false,
  http: false,
  env: { DATABASE_URL: `${process.env.TEST_DATABASE_BASE_URL ?? 'postgres://postgres@127.0.0.1:5432'}/${uniqueName('evalgate_probe')}`, DATABASE_POOL_MAX: '8' },
});
const c = s.container;
const admin = new pg.Client({ connectionString: s.env.DATABASE_URL });
await admin.connect();
const pgCpuMs = async () => {
  const { rows } = await admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()');
  return rows.reduce((a, r) => a + cpuMs(r.pid), 0);
};
const perItem = (ms: number) => `${((ms * 1000) / N).toFixed(1)} µs/item`;

try {
  const t = await makeTenant(c);
  const ds = await makeDataset(c, t.id, items(N, (i) => i % 10 !== 0));
  const ev = await makeEval(c, t.id, { type: 'exact_match' });
  const evaluate = compileEvaluator({ type: 'exact_match' } as EvaluatorConfig);
  await admin.query('vacuum analyze');
  console.log(`${N} items, chunks of ${CHUNK}; PostgreSQL CPU of the database's backends:`);

  const trial = async (label: string, lanes: number) => {
    const em = c.orm.em.fork();
    const run = await insertPendingRun(em, t.id, ds.datasetId, ev.evalVersionId);
    const cpu0 = await pgCpuMs();
    const { chunks } = await startRun(em, run.id, CHUNK);
    const cpu1 = await pgCpuMs();
    const work: { idx: number; chunk: ChunkContext; results: ItemResult[] }[] = [];
    for (let idx = 0; idx < chunks; idx++) {
      const chunk = await loadChunk(em, run.id, idx);
      if (!chunk) throw new Error(`chunk ${idx} missing`);
      const rows = await loadPendingItems(em, chunk);
      const results = rows.map((it): ItemResult => {
        const r = evaluate({ input: it.input, output: it.output, expected_output: it.expected_output, metadata: it.metadata } as never);
        return { item_id: it.id, status: r.passed ? 'passed' : 'failed', score: r.score, passed: r.passed, reason: r.reason ?? null, error: null, latency_ms: 0 };
      });
      work.push({ idx, chunk, results });
    }
    const cpu2 = await pgCpuMs();
    await Promise.all(Array.from({ length: 8 }, () => sql(c.orm.em.fork(), 'select 1'))); // open every pool connection first
    const cpu3 = await pgCpuMs();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        const lem = c.orm.em.fork();
        while (next < work.length) {
          const w = work[next++] as (typeof work)[number];
          await recordResults(lem, w.chunk, w.idx, 1, w.results, true);
        }
      }),
    );
    const wall = performance.now() - t0;
    const cpu4 = await pgCpuMs();
    const [r] = await sql<{ status: string }>(em, 'select status from eval_runs where id = ?', [run.id]);
    if (r?.status !== 'completed') throw new Error(`run ended ${r?.status}`);
    console.log(
      `${label}, ${lanes} connection(s): startRun ${perItem(cpu1 - cpu0)}, loadChunk + loadPendingItems ${perItem(cpu2 - cpu1)}, ` +
        `recordResults ${perItem(cpu4 - cpu3)} (${((N / wall) * 1000).toFixed(0)} items/s recorded)`,
    );
    await admin.query('delete from eval_runs where id = $1', [run.id]);
    await admin.query('vacuum analyze eval_run_items, eval_runs, eval_run_chunks');
  };

  for (const lanes of [1, 4, 1, 4]) await trial('schema as migrated', lanes);
  await admin.query('alter table eval_run_items drop constraint eval_run_items_run_id_foreign');
  for (const lanes of [1, 4, 1, 4]) await trial('without the eval_run_items → eval_runs foreign key', lanes);
} finally {
  await admin.end();
  await s.close();
}
