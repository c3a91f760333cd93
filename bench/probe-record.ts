/**
 * Where a run's PostgreSQL CPU goes, statement by statement, without workers
 * or queues: on a fresh database with an N-item dataset (default 100,000),
 * it cuts a run into chunks (startRun), then
 *  - "separate": loads every chunk's items (loadChunkWork) before recording
 *    anything, then records every chunk's results (recordResults: one
 *    statement per chunk) over 1 or 4 concurrent connections;
 *  - "interleaved": 4 lanes each load, score and record one chunk after the
 *    other, as the worker does (loads then run while the run's results grow,
 *    which is what exposed the quadratic anti-join that loadChunkWork avoids);
 * with the schema as migrated, then again after restoring the foreign key
 * eval_run_items.run_id → eval_runs that Migration20261126012904ResultsWithoutRunForeignKey
 * dropped (in this throw-away database only). PostgreSQL CPU is read from
 * /proc for the database's backends, so run it on the database's machine.
 *
 *   node --import tsx bench/probe-record.ts [items]
 */
import pg from 'pg';
import { compileEvaluator, type EvaluatorConfig } from '../domain/evaluators/index.ts';
import { loadChunkWork, recordResults, startRun, type ChunkContext, type ItemResult, type ItemToScore } from '../domain/eval-runs/run-lifecycle.ts';
import { insertPendingRun } from '../domain/eval-runs/eval-run.service.ts';
import { purgeDeletions } from '../domain/eval-runs/run-deletion.service.ts';
import { sql } from '../domain/shared/sql.ts';
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
const rate = (ms: number) => `${((N / ms) * 1000).toFixed(0)} items/s`;

try {
  const t = await makeTenant(c);
  const ds = await makeDataset(c, t.id, items(N, (i) => i % 10 !== 0));
  const ev = await makeEval(c, t.id, { type: 'exact_match' });
  const evaluate = compileEvaluator({ type: 'exact_match' } as EvaluatorConfig);
  const score = (rows: ItemToScore[]) =>
    rows.map((it): ItemResult => {
      const r = evaluate({ input: it.input, output: it.output, expected_output: it.expected_output, metadata: it.metadata } as never);
      return { item_id: it.id, status: r.passed ? 'passed' : 'failed', score: r.score, passed: r.passed, reason: r.reason ?? null, error: null, latency_ms: 0 };
    });
  await admin.query('vacuum analyze');
  console.log(`${N} items, chunks of ${CHUNK}; PostgreSQL CPU of the database's backends:`);

  const newRun = async () => {
    const em = c.orm.em.fork();
    const run = await insertPendingRun(em, t.id, ds.datasetId, ev.evalVersionId);
    const cpu0 = await pgCpuMs();
    const { chunks } = await startRun(em, run.id, CHUNK);
    const startCpu = (await pgCpuMs()) - cpu0;
    await Promise.all(Array.from({ length: 8 }, () => sql(c.orm.em.fork(), 'select 1'))); // open every pool connection first
    return { em, runId: run.id, chunks, startCpu };
  };
  const finish = async (em: ReturnType<typeof c.orm.em.fork>, runId: string) => {
    const [r] = await sql<{ status: string; n: number }>(em, 'select status, completed_count as n from eval_runs where id = ?', [runId]);
    if (r?.status !== 'completed' || r.n !== N) throw new Error(`run ended ${r?.status} with ${r?.n} results`);
    await admin.query('delete from eval_runs where id = $1', [runId]);
    // the delete only marks the run; its results go in the purge's batches
    await purgeDeletions(c, c.log, { maxBatches: Number.MAX_SAFE_INTEGER });
    const [left] = (await admin.query<{ n: number }>('select count(*)::int as n from eval_run_items where run_id = $1', [runId])).rows;
    if (left?.n !== 0) throw new Error(`${left?.n} results outlived their run`);
    await admin.query('vacuum analyze eval_run_items, eval_runs, eval_run_chunks');
  };

  const separate = async (label: string, lanes: number) => {
    const { em, runId, chunks, startCpu } = await newRun();
    const cpu1 = await pgCpuMs();
    const work: { idx: number; chunk: ChunkContext; results: ItemResult[] }[] = [];
    for (let idx = 0; idx < chunks; idx++) {
      const w = await loadChunkWork(em, runId, idx);
      if (!w) throw new Error(`chunk ${idx} missing`);
      work.push({ idx, chunk: w.chunk, results: score(w.items) });
    }
    const cpu2 = await pgCpuMs();
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
    const cpu3 = await pgCpuMs();
    console.log(
      `${label}, separate, ${lanes} connection(s): startRun ${perItem(startCpu)}, loadChunkWork ${perItem(cpu2 - cpu1)}, ` +
        `recordResults ${perItem(cpu3 - cpu2)} (${rate(wall)} recorded)`,
    );
    await finish(em, runId);
  };

  const interleaved = async (label: string, lanes: number) => {
    const { em, runId, chunks } = await newRun();
    const cpu1 = await pgCpuMs();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        const lem = c.orm.em.fork();
        while (next < chunks) {
          const idx = next++;
          const w = await loadChunkWork(lem, runId, idx);
          if (!w) throw new Error(`chunk ${idx} missing`);
          await recordResults(lem, w.chunk, idx, 1, score(w.items), true);
        }
      }),
    );
    const wall = performance.now() - t0;
    const cpu2 = await pgCpuMs();
    console.log(`${label}, interleaved, ${lanes} connection(s): load + record ${perItem(cpu2 - cpu1)} (${rate(wall)})`);
    await finish(em, runId);
  };

  const round = async (label: string) => {
    for (const lanes of [1, 4, 1, 4]) await separate(label, lanes);
    for (let k = 0; k < 2; k++) await interleaved(label, 4);
  };
  await round('schema as migrated');
  await admin.query(
    `alter table eval_run_items add constraint eval_run_items_run_id_foreign foreign key (run_id) references eval_runs (id) on update cascade on delete cascade`,
  );
  await round('with the eval_run_items → eval_runs foreign key restored');
} finally {
  await admin.end();
  await s.close();
}
