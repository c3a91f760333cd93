/** Data for the bench: items, NDJSON uploads through the API, runs and how long they took. */
import type { NewItem } from '../../domain/datasets/dataset.service.ts';
import { enqueueRunStart, insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import { purgeDeletions } from '../../domain/eval-runs/run-deletion.service.ts';
import type { Bench } from './context.ts';
import { cpuMs, sleep, until, type Proc } from './procs.ts';

/** Item i; nine in ten pass exact_match (and the fake judge). */
export function item(i: number): NewItem {
  return {
    input: `question ${i}`,
    expected_output: `answer ${i}`,
    output: i % 10 === 0 ? `wrong ${i}` : `answer ${i}`,
    metadata: { i },
  };
}

export async function apiJson<T>(base: string, key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function createDatasetViaApi(base: string, key: string, name: string): Promise<string> {
  const r = await apiJson<{ id: string }>(base, key, 'POST', '/v1/datasets', { name });
  if (r.status !== 201) throw new Error(`createDataset answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** Streams `n` items as NDJSON to the upload route (never holding the body); returns the elapsed ms. */
export async function uploadNdjson(base: string, key: string, datasetId: string, n: number): Promise<number> {
  const enc = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i >= n) return controller.close();
      let chunk = '';
      for (let k = 0; k < 1_000 && i < n; k++, i++) chunk += `${JSON.stringify(item(i))}\n`;
      controller.enqueue(enc.encode(chunk));
    },
  });
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/datasets/${datasetId}/items/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' },
    body,
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  const elapsed = performance.now() - t0;
  if (res.status !== 201) throw new Error(`upload of ${n} items answered ${res.status}: ${text.slice(0, 500)}`);
  const v = JSON.parse(text) as { item_count: number };
  if (v.item_count !== n) throw new Error(`upload stored ${v.item_count} items, expected ${n}`);
  return elapsed;
}

export interface RunMeasurement {
  runId: string;
  items: number;
  /** schedule (the run row's created_at) → completed_at, from Postgres' clock */
  totalMs: number;
  /** schedule → the first result row */
  firstResultMs: number;
  /** schedule → started_at (run-start picked up) */
  startMs: number;
  itemsPerS: number;
  /** CPU time (user + system) each watched process spent during the run */
  cpuMs: Record<string, number>;
  /** CPU time of the bench database's Postgres backends during the run (approximate: backends that came and went are missed) */
  pgCpuMs: number;
  /** autovacuum + autoanalyze runs in the bench database that finished during the run (their CPU is part of pgCpuMs when they overlap the snapshots) */
  autovacuums: number;
  /** how long an autovacuum worker was seen busy in the bench database during the run (sampled every 25 ms) */
  autovacuumActiveMs: number;
  passed: number;
  failed: number;
  errors: number;
}

async function backendPids(b: Bench): Promise<number[]> {
  const { rows } = await b.pg.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
  return rows.map((r) => r.pid);
}

async function pgCpuSnapshot(b: Bench): Promise<Map<number, number>> {
  return new Map((await backendPids(b)).map((pid) => [pid, cpuMs(pid)]));
}

async function autovacuumCount(b: Bench): Promise<number> {
  const { rows } = await b.pg.query<{ n: string }>('select coalesce(sum(autovacuum_count + autoanalyze_count), 0) as n from pg_stat_user_tables');
  return Number(rows[0]?.n ?? 0);
}

export type Scheduler = () => Promise<string>;

/** Schedules over REST (POST /v1/datasets/{id}/runs). */
export function restScheduler(base: string, key: string, datasetId: string, evalVersionId: string): Scheduler {
  return async () => {
    const r = await apiJson<{ id: string }>(base, key, 'POST', `/v1/datasets/${datasetId}/runs`, { eval_version_id: evalVersionId });
    if (r.status !== 202) throw new Error(`schedule answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body.id;
  };
}

/** Schedules in this process with the service functions (the same statement and enqueue as the API). */
export function serviceScheduler(b: Bench, tenantId: string, datasetId: string, evalVersionId: string): Scheduler {
  return async () => {
    const c = b.stack.container;
    const run = await insertPendingRun(c.orm.em.fork(), tenantId, datasetId, evalVersionId);
    await enqueueRunStart(c, run.id);
    return run.id;
  };
}

/**
 * Schedules one run, waits for it to complete, reads its timings from
 * Postgres, then deletes it (its results and chunks go with it) and vacuums,
 * so every round starts from the same table sizes.
 */
export async function measureRun(b: Bench, schedule: Scheduler, watch: Proc[], timeoutMs: number): Promise<RunMeasurement> {
  const cpu0 = new Map(watch.map((p) => [p.name, cpuMs(p.pid)]));
  const pg0 = await pgCpuSnapshot(b);
  const av0 = await autovacuumCount(b);
  const runId = await schedule();
  let autovacuumPolls = 0;
  let polls = 0;
  const pollStart = performance.now();
  await until(
    async () => {
      const { rows } = await b.pg.query<{ status: string; error_message: string | null; av: number }>(
        `select status, error_message,
                (select count(*)::int from pg_stat_activity a where a.datname = current_database() and a.backend_type = 'autovacuum worker') as av
           from eval_runs where id = $1`,
        [runId],
      );
      const s = rows[0];
      polls++;
      if (s && s.av > 0) autovacuumPolls++;
      if (s?.status === 'failed') throw new Error(`run ${runId} failed: ${s.error_message}`);
      return s?.status === 'completed';
    },
    `run ${runId} to complete`,
    timeoutMs,
    25,
  ).catch((err: unknown) => {
    const tails = watch.map((p) => `--- ${p.name}:\n${p.output().slice(-2000)}`).join('\n');
    throw new Error(`${(err as Error).message}\n${tails}`);
  });
  const pollMs = performance.now() - pollStart;
  const cpu = Object.fromEntries(watch.map((p) => [p.name, cpuMs(p.pid) - (cpu0.get(p.name) ?? 0)]));
  const pg1 = await pgCpuSnapshot(b);
  const autovacuums = (await autovacuumCount(b)) - av0;
  let pgCpu = 0;
  for (const [pid, after] of pg1) pgCpu += after - (pg0.get(pid) ?? 0);
  const { rows } = await b.pg.query<{ items: number; total_ms: number; first_ms: number; start_ms: number; passed: number; failed: number; errors: number; n: number }>(
    `select r.item_count as items, r.passed_count as passed, r.failed_count as failed, r.error_count as errors,
            extract(epoch from r.completed_at - r.created_at) * 1000 as total_ms,
            extract(epoch from r.started_at - r.created_at) * 1000 as start_ms,
            extract(epoch from (select min(i.created_at) from eval_run_items i where i.run_id = r.id) - r.created_at) * 1000 as first_ms,
            (select count(*)::int from eval_run_items i where i.run_id = r.id) as n
       from eval_runs r where r.id = $1`,
    [runId],
  );
  const r = rows[0];
  if (!r) throw new Error(`run ${runId} vanished`);
  if (r.n !== r.items) throw new Error(`run ${runId} completed with ${r.n} results for ${r.items} items`);
  await b.pg.query('delete from eval_runs where id = $1', [runId]);
  await purgeNow(b);
  await b.pg.query('vacuum analyze eval_run_items, eval_run_chunks, eval_runs');
  const totalMs = Number(r.total_ms);
  return {
    runId,
    items: r.items,
    totalMs,
    firstResultMs: Number(r.first_ms),
    startMs: Number(r.start_ms),
    itemsPerS: (r.items / totalMs) * 1000,
    cpuMs: cpu,
    pgCpuMs: pgCpu,
    autovacuums,
    autovacuumActiveMs: polls ? (autovacuumPolls / polls) * pollMs : 0,
    passed: r.passed,
    failed: r.failed,
    errors: r.errors,
  };
}

/** Waits until `n` processes consume the run-chunk queue. */
export async function waitForWorkers(b: Bench, n: number, procs: Proc[]): Promise<void> {
  const q = b.stack.container.queues.runChunk;
  const deadline = Date.now() + 90_000;
  while ((await q.getWorkersCount()) < n) {
    for (const p of procs) if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}):\n${p.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} worker process(es)`);
    await sleep(100);
  }
}

/**
 * Deletes now, in this process, what deleted runs and datasets left (a delete only marks them; the workers' purge
 * would otherwise run during the next measurement), so the cleanup between measurements is done when it returns.
 */
export async function purgeNow(b: Pick<Bench, 'stack'>): Promise<void> {
  await purgeDeletions(b.stack.container, b.stack.container.log, { maxBatches: Number.MAX_SAFE_INTEGER });
}
