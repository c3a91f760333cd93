/**
 * The results' monthly partitions (issue #16; migration
 * Migration20261206020000PartitionedResults, domain/eval-runs/result-partitions.service.ts):
 * a run's results and samples land in its month's partition, the months
 * ahead exist and are created by the sweep, and a month whose runs are all
 * deleted is dropped whole (no batch of the purge touches its rows) while a
 * month with a run left keeps them; a drop that stopped half-way (a detach
 * pending, a detached table left) is finished by the next sweep.
 *
 * Months passing are the sweep's `now` moved ahead (the database's clock is
 * not); the main stack runs no workers, so the background work happens only
 * when a test calls it.
 */
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPartitions } from '../../domain/eval-runs/result-partitions.repository.ts';
import { ensureResultPartitions, PARTITION_MONTHS_AHEAD } from '../../domain/eval-runs/result-partitions.service.ts';
import { purgeDeletions, sweepDeletions } from '../../domain/eval-runs/run-deletion.service.ts';
import { sql } from '../../domain/shared/sql.ts';
import { deletionsLeft, runRows } from '../helpers/deletions.ts';
import { makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api } from '../helpers/runs.ts';
import { seedCompletedRun, seedDataset } from '../helpers/seed-run.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

const log = pino({ level: 'silent' });
let s: Stack;
let a: TenantFixture;
let evalVersionId: string;

beforeAll(async () => {
  s = await startStack({ workers: false, env: { RESULT_RETENTION_DAYS: '30' } });
  a = await makeTenant(s.container, 'a');
  evalVersionId = (await makeEval(s.container, a.id)).evalVersionId;
});
afterAll(async () => s?.close());

const em = () => s.container.orm.em.fork();
const DAY = 86_400_000;

/** The first instant (UTC) of the month `n` months after now's. */
const monthFromNow = (n: number) => {
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1);
};
const suffix = (ms: number) => {
  const d = new Date(ms);
  return `p${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
};

/** The attached partitions of a table, by name. */
async function partitionsOf(table: 'eval_run_items' | 'eval_run_samples'): Promise<string[]> {
  return (await listPartitions(em())).filter((p) => p.parent === table).map((p) => p.name);
}

/** A completed run over a fresh dataset of `items` items, a sample per result and 3 chunks. */
async function seededRun(items: number): Promise<string> {
  const datasetId = await seedDataset(s.container, a.id, items);
  const runId = await seedCompletedRun(s.container, a.id, datasetId, evalVersionId);
  await sql(
    em(),
    `insert into eval_run_samples (run_id, item_id, repetition, tenant_id, status, attempts, output_text, created_at, updated_at)
     select run_id, item_id, 0, tenant_id, 'done', 1, 'out', now(), now() from eval_run_items where run_id = ?`,
    [runId],
  );
  await sql(
    em(),
    `insert into eval_run_chunks (run_id, chunk_index, first_item_id, last_item_id, item_count, done_at)
     select ?, g, ?::uuid, ?::uuid, 1, now() from generate_series(0, 2) g`,
    [runId, '00000000-0000-7000-8000-000000000000', 'ffffffff-ffff-7fff-bfff-ffffffffffff'],
  );
  return runId;
}

/** Which partition holds each of the run's rows, per table. */
async function whereRowsAre(runId: string): Promise<{ items: string[]; samples: string[] }> {
  const at = async (t: string) =>
    (await sql<{ p: string }>(em(), `select distinct tableoid::regclass::text as p from ${t} where run_id = ?`, [runId])).map((r) => r.p);
  return { items: await at('eval_run_items'), samples: await at('eval_run_samples') };
}

describe('monthly partitions of the results', () => {
  it('puts a run’s results and samples in its month’s partition; this month and the next ones exist', async () => {
    const names = Array.from({ length: PARTITION_MONTHS_AHEAD + 1 }, (_, i) => suffix(monthFromNow(i)));
    for (const t of ['eval_run_items', 'eval_run_samples'] as const) {
      const have = await partitionsOf(t);
      for (const n of names) expect(have).toContain(`${t}_${n}`);
    }
    const runId = await seededRun(40);
    expect(await whereRowsAre(runId)).toEqual({ items: [`eval_run_items_${names[0]}`], samples: [`eval_run_samples_${names[0]}`] });
    // a read of one run plans its month's partition only (pruned when planned: no Append over the others)
    const text = (await sql<{ 'QUERY PLAN': string }>(em(), `explain select * from eval_run_items where run_id = ?::uuid order by item_id limit 50`, [runId]))
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    expect([...new Set(text.match(/eval_run_items_p\d{4}_\d{2}\b/g))]).toEqual([`eval_run_items_${names[0]}`]);
    expect(text).not.toContain('Append');
  });

  it('creates the months ahead as time goes on, once, even when two processes ensure at the same time', async () => {
    // five months from now: months +5 … +5+AHEAD are new (+AHEAD … +4 may or may not be)
    const later = monthFromNow(5) + 3 * DAY;
    const before = new Set(await partitionsOf('eval_run_items'));
    const made = await Promise.all([ensureResultPartitions(em(), later), ensureResultPartitions(em(), later)]);
    const after = await partitionsOf('eval_run_items');
    const added = after.filter((n) => !before.has(n));
    expect(made[0]! + made[1]!).toBe(2 * added.length); // both tables, each partition created by exactly one of the two
    for (let i = 5; i <= 5 + PARTITION_MONTHS_AHEAD; i++) expect(after).toContain(`eval_run_items_${suffix(monthFromNow(i))}`);
    expect(await ensureResultPartitions(em(), later)).toBe(0);
    // the sweep does the same: at month +9, months +9 … +9+AHEAD are new, in both tables
    expect((await sweepDeletions(s.container, log, { now: monthFromNow(9) + DAY })).partitions.created).toBe(2 * (PARTITION_MONTHS_AHEAD + 1));
  });

  it('finishes a drop that stopped half-way: a detach left pending is finalized, a detached table left is dropped', async () => {
    // month +9's partitions exist (above) and hold no run: droppable once that month is well over
    const name = suffix(monthFromNow(9));
    const holder = new pg.Client({ connectionString: s.container.env.DATABASE_URL });
    const detacher = new pg.Client({ connectionString: s.container.env.DATABASE_URL });
    await holder.connect();
    await detacher.connect();
    try {
      // a transaction holding a lock on the partition: DETACH … CONCURRENTLY waits for it, and its statement timeout stops it half-way
      await holder.query('begin');
      await holder.query(`select count(*) from eval_run_items_${name}`);
      await detacher.query(`set statement_timeout = 500`);
      await expect(detacher.query(`alter table eval_run_items detach partition eval_run_items_${name} concurrently`)).rejects.toThrow(/statement timeout/);
      await holder.query('rollback');
      // the other table's partition detached but not dropped (a crash between the two statements)
      await detacher.query(`alter table eval_run_samples detach partition eval_run_samples_${name}`);
    } finally {
      await holder.end();
      await detacher.end();
    }
    const left = (await listPartitions(em())).filter((p) => p.name.endsWith(name));
    expect(left).toEqual(
      expect.arrayContaining([
        { name: `eval_run_items_${name}`, parent: 'eval_run_items', detach_pending: true },
        { name: `eval_run_samples_${name}`, parent: null, detach_pending: false },
      ]),
    );
    const swept = await sweepDeletions(s.container, log, { now: monthFromNow(10) + 2 * DAY });
    expect(swept.partitions.dropped).toEqual(expect.arrayContaining([`eval_run_items_${name}`, `eval_run_samples_${name}`]));
    expect(swept.partitions.failed).toEqual([]);
    expect((await listPartitions(em())).filter((p) => p.name.endsWith(name))).toEqual([]);
  });

  it('drops a month whose runs are all deleted, rows and all, with no batch of the purge; keeps a month that still has a run', async () => {
    const thisMonth = suffix(monthFromNow(0));
    const kept = await seededRun(30);
    const gone = await seededRun(120);
    const all = (await sql<{ id: string }>(em(), 'select id from eval_runs')).map((r) => r.id);
    // the month is over (and the day of grace): while any run of it is left, its partitions stay
    const later = monthFromNow(1) + 2 * DAY;
    expect((await sweepDeletions(s.container, log, { now: later })).partitions.dropped).toEqual([]);
    expect(await partitionsOf('eval_run_items')).toContain(`eval_run_items_${thisMonth}`);

    // every run of the month deleted, but the one: still kept; its deleted runs' rows go by the purge's batches
    for (const id of all.filter((x) => x !== kept)) expect((await api(s.baseUrl, 'DELETE', `/v1/eval-runs/${id}`, a.keys.owner)).status).toBe(202);
    expect((await sweepDeletions(s.container, log, { now: later })).partitions.dropped).toEqual([]);
    const first = await purgeDeletions(s.container, log);
    expect(first).toMatchObject({ more: false });
    expect(first.rows).toBeGreaterThan(0);
    expect(await runRows(s, [gone])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
    expect((await runRows(s, [kept])).results).toBe(30);

    // the last run deleted: the sweep drops the month's partitions of both tables, and the purge has no result or sample row to delete
    expect((await api(s.baseUrl, 'DELETE', `/v1/eval-runs/${kept}`, a.keys.owner)).status).toBe(202);
    const swept = await sweepDeletions(s.container, log, { now: later });
    expect(swept.partitions.dropped).toEqual(expect.arrayContaining([`eval_run_items_${thisMonth}`, `eval_run_samples_${thisMonth}`]));
    const batches: { table: string; rows: number }[] = [];
    const done = await purgeDeletions(s.container, log, { onBatch: (b) => batches.push({ table: b.table, rows: b.rows }) });
    expect(done).toMatchObject({ finished: 1, more: false });
    expect(batches.filter((b) => b.table !== 'eval_run_chunks' && b.rows > 0)).toEqual([]);
    expect(batches.filter((b) => b.table === 'eval_run_chunks').reduce((n, b) => n + b.rows, 0)).toBe(3);
    expect(await runRows(s, [kept])).toEqual({ runs: 0, results: 0, samples: 0, chunks: 0 });
    expect(await deletionsLeft(s)).toBe(0);

    // the next sweep at the real now creates this month's partitions again (a test's time travel: a real month is never dropped before it ends)
    // (the sweep at month +10 above dropped the empty months +1 … +9 too: they come back as well)
    expect((await sweepDeletions(s.container, log)).partitions.created).toBeGreaterThanOrEqual(2);
    expect(await partitionsOf('eval_run_samples')).toContain(`eval_run_samples_${thisMonth}`);
    const again = await seededRun(10);
    expect(await whereRowsAre(again)).toEqual({ items: [`eval_run_items_${thisMonth}`], samples: [`eval_run_samples_${thisMonth}`] });
  });
});
