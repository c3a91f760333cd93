/**
 * Parts 2, 3 and 5: the run pipeline (schedule → completed, exact_match),
 * its two baselines, the scale curve (items/s, peak RSS, CPU per item) with
 * the NDJSON upload that fills each dataset, and 1/2/4 worker processes.
 */
import { Queue } from 'bullmq';
import { v7 as uuidv7 } from 'uuid';
import { jobOptions } from '../../jobs/queues.ts';
import { makeEval, makeTenant, type TenantFixture } from '../../test/helpers/factories.ts';
import type { Bench } from '../lib/context.ts';
import { createDatasetViaApi, measureRun, purgeNow, restScheduler, uploadNdjson, waitForWorkers, type RunMeasurement } from '../lib/fixtures.ts';
import { peakRssMb, spawnTs, until, type Proc } from '../lib/procs.ts';

/** evalgate's defaults, which the pipeline runs with and the baselines copy. */
export const WORKER_CONCURRENCY = 4;
export const CHUNK_SIZE = 500;
/** Baseline (a)'s worker concurrency: a per-item design would run many no-op jobs at once. */
export const NOOP_CONCURRENCY = 50;

export interface BaselineRound {
  itemsPerS: number;
  totalMs: number;
  firstResultMs: number;
}

/** Baseline (a): one no-op BullMQ job per item, addBulk from here, a plain Worker in its own process. */
export async function baselineBullmq(b: Bench, n: number, warmN: number): Promise<BaselineRound[]> {
  const queueName = 'bench-noop';
  const prefix = b.stack.env.EVALGATE_QUEUE_PREFIX;
  const u = new URL(b.stack.env.REDIS_URL);
  const queue = new Queue(queueName, { connection: { host: u.hostname, port: Number(u.port || 6379) }, prefix });
  const opts = jobOptions({ chunkAttempts: 8 }).runChunk;
  const proc = spawnTs('baseline-bullmq-worker', 'bench/baselines/bullmq-noop-worker.ts', [], {
    env: { REDIS_URL: b.stack.env.REDIS_URL, EVALGATE_QUEUE_PREFIX: prefix, QUEUE: queueName, CONCURRENCY: String(NOOP_CONCURRENCY) },
    ipc: true,
  });
  type Msg = { type: 'started' | 'ready' } | { type: 'done'; firstAt: number; lastAt: number; count: number };
  const next = (type: Msg['type'], timeoutMs: number) =>
    new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`baseline worker: no "${type}" within ${timeoutMs} ms\n${proc.output().slice(-2000)}`)), timeoutMs);
      const onMsg = (m: Msg) => {
        if (m.type !== type) return;
        clearTimeout(timer);
        proc.child.off('message', onMsg);
        resolve(m);
      };
      proc.child.on('message', onMsg);
    });
  try {
    await next('started', 60_000);
    const round = async (count: number): Promise<BaselineRound> => {
      const ready = next('ready', 10_000);
      proc.child.send({ type: 'expect', expect: count });
      await ready;
      const finished = next('done', Math.max(120_000, count * 5));
      const runId = uuidv7();
      const t0 = Date.now();
      for (let i = 0; i < count; i += 1_000) {
        const batch = Array.from({ length: Math.min(1_000, count - i) }, (_, k) => ({
          name: 'run-chunk',
          data: { run_id: runId, chunk_index: i + k },
          opts: { ...opts, jobId: `${runId}-${i + k}` },
        }));
        await queue.addBulk(batch);
      }
      const done = (await finished) as Extract<Msg, { type: 'done' }>;
      const totalMs = done.lastAt - t0;
      return { itemsPerS: (count / totalMs) * 1000, totalMs, firstResultMs: done.firstAt - t0 };
    };
    await round(warmN);
    const out: BaselineRound[] = [];
    for (let r = 0; r < b.opts.rounds; r++) {
      const res = await round(n);
      b.log(`baseline (a) bullmq round ${r + 1}: ${res.itemsPerS.toFixed(0)} items/s`);
      out.push(res);
    }
    return out;
  } finally {
    await proc.stop();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

/**
 * Baseline (b): the same result rows written with `pg` as multi-row INSERTs
 * of CHUNK_SIZE rows, WORKER_CONCURRENCY connections at once, into a table
 * shaped like eval_run_items (same columns, checks and indexes; no foreign keys).
 */
export async function baselineInsert(b: Bench, n: number, warmN: number): Promise<BaselineRound[]> {
  await b.pg.query('create table if not exists bench_run_items (like eval_run_items including all)');
  const { rows: cols } = await b.pg.query<{ column_name: string }>(
    `select column_name from information_schema.columns where table_name = 'eval_run_items' order by ordinal_position`,
  );
  const columns = cols.map((c) => c.column_name);
  const tenantId = uuidv7();
  const valueOf = (col: string, runId: string, i: number): unknown => {
    const passed = i % 10 !== 0;
    switch (col) {
      case 'run_id':
        return runId;
      case 'item_id':
        return uuidv7();
      case 'tenant_id':
        return tenantId;
      case 'status':
        return passed ? 'passed' : 'failed';
      case 'score':
        return passed ? 1 : 0;
      case 'passed':
        return passed;
      case 'reason':
        return passed ? 'output equals the expected output' : 'output differs from the expected output';
      case 'attempts':
        return 1;
      case 'latency_ms':
        return 0;
      case 'created_at':
        return new Date();
      default:
        return null;
    }
  };
  const round = async (count: number): Promise<BaselineRound> => {
    const runId = uuidv7();
    const batches: number[] = [];
    for (let i = 0; i < count; i += CHUNK_SIZE) batches.push(i);
    let first = 0;
    const t0 = performance.now();
    let nextBatch = 0;
    const lanes = Array.from({ length: WORKER_CONCURRENCY }, async () => {
      const client = await b.pg.connect();
      try {
        while (nextBatch < batches.length) {
          const start = batches[nextBatch++] as number;
          const size = Math.min(CHUNK_SIZE, count - start);
          const params: unknown[] = [];
          const tuples: string[] = [];
          for (let k = 0; k < size; k++) {
            const ph: string[] = [];
            for (const col of columns) {
              params.push(valueOf(col, runId, start + k));
              ph.push(`$${params.length}`);
            }
            tuples.push(`(${ph.join(',')})`);
          }
          await client.query(`insert into bench_run_items (${columns.join(',')}) values ${tuples.join(',')}`, params);
          if (!first) first = performance.now() - t0;
        }
      } finally {
        client.release();
      }
    });
    await Promise.all(lanes);
    const totalMs = performance.now() - t0;
    await b.pg.query('truncate bench_run_items');
    return { itemsPerS: (count / totalMs) * 1000, totalMs, firstResultMs: first };
  };
  await round(warmN);
  const out: BaselineRound[] = [];
  for (let r = 0; r < b.opts.rounds; r++) {
    const res = await round(n);
    b.log(`baseline (b) insert round ${r + 1}: ${res.itemsPerS.toFixed(0)} items/s`);
    out.push(res);
  }
  await b.pg.query('drop table bench_run_items');
  return out;
}

export interface UploadResult {
  items: number;
  ms: number[];
  /** API peak RSS (VmHWM) after the warm-up upload, and after the measured uploads */
  apiRssBeforeMb: number;
  apiRssAfterMb: number;
}

export interface PipelineConfig {
  items: number;
  workers: number;
  runs: RunMeasurement[];
  /** largest peak RSS among the worker processes, and the API's, after the runs */
  workerPeakRssMb: number;
  apiPeakRssMb: number;
}

export interface SizesResult {
  uploads: UploadResult[];
  pipelines: PipelineConfig[];
}

/**
 * For each size: a fresh API process takes the NDJSON uploads (measured),
 * then fresh worker processes run the pipeline over the uploaded dataset;
 * at `horizontalAt`, the same again with 2 and 4 worker processes.
 */
export async function benchSizes(b: Bench, sizes: number[], horizontalAt: number | null, workerCounts: number[]): Promise<SizesResult> {
  const c = b.stack.container;
  const t: TenantFixture = await makeTenant(c, 'bench-pipeline');
  const ev = await makeEval(c, t.id, { type: 'exact_match' });
  const key = t.keys.member;
  const warmItems = b.opts.smoke ? 200 : 2_000;
  const uploads: UploadResult[] = [];
  const pipelines: PipelineConfig[] = [];

  // Smoke mode shares one API and one pool of workers across sizes (fewer process starts); otherwise
  // each size gets fresh processes, so that their peak RSS belongs to that size alone.
  const share = b.opts.smoke;
  let api: { proc: Proc; base: string } | undefined;
  let workers: Proc[] = [];
  const stopProcs = async () => {
    // SIGTERM, so a CPU profile (--cpu-prof) is written on exit
    await Promise.all([api?.proc, ...workers].map((p) => p?.stop()));
    api = undefined;
    workers = [];
    const kept = b.sharedWorkers.length;
    await until(async () => (await c.queues.runChunk.getWorkersCount()) <= kept, 'worker processes to disconnect', 30_000, 100).catch(() => undefined);
  };
  try {
    for (const size of sizes) {
      api ??= await b.startApi(`api-${size}`);
      const warmDs = await createDatasetViaApi(api.base, key, `warm-${size}`);
      await uploadNdjson(api.base, key, warmDs, warmItems);
      const before = peakRssMb(api.proc.pid);
      const ms: number[] = [];
      let datasetId = '';
      for (let r = 0; r < b.opts.rounds; r++) {
        const ds = await createDatasetViaApi(api.base, key, `bench-${size}-${r}`);
        ms.push(await uploadNdjson(api.base, key, ds, size));
        b.log(`upload ${size} items round ${r + 1}: ${(ms[r] as number).toFixed(0)} ms`);
        // keep one dataset of this size; the others only cost disk
        if (datasetId) await b.pg.query('delete from datasets where id = $1', [datasetId]);
        datasetId = ds;
      }
      await purgeNow(b);
      await b.pg.query('vacuum analyze dataset_items');
      uploads.push({ items: size, ms, apiRssBeforeMb: before, apiRssAfterMb: peakRssMb(api.proc.pid) });

      const counts = size === horizontalAt ? workerCounts : [1];
      for (const w of counts) {
        while (workers.length < w) workers.push(b.startWorker(`worker-${size}-${workers.length + 1}`));
        const active = workers.slice(0, w);
        await waitForWorkers(b, workers.length, workers);
        const timeoutMs = Math.max(120_000, size * 3);
        // warm-up: every worker compiles its hot paths and fills its pools before anything is timed
        await measureRun(b, restScheduler(api.base, key, warmDs, ev.evalVersionId), active, timeoutMs);
        const runs: RunMeasurement[] = [];
        for (let r = 0; r < b.opts.rounds; r++) {
          const m = await measureRun(b, restScheduler(api.base, key, datasetId, ev.evalVersionId), [...active, api.proc], timeoutMs);
          b.log(`pipeline ${size} items, ${w} worker(s), round ${r + 1}: ${m.itemsPerS.toFixed(0)} items/s, first result ${m.firstResultMs.toFixed(0)} ms`);
          runs.push(m);
        }
        pipelines.push({
          items: size,
          workers: w,
          runs,
          workerPeakRssMb: Math.max(...active.map((p) => peakRssMb(p.pid))),
          apiPeakRssMb: peakRssMb(api.proc.pid),
        });
      }
      if (!share) await stopProcs();
    }
    if (share) {
      b.sharedWorkers = workers.slice(0, 1);
      workers = workers.slice(1);
    }
  } finally {
    await stopProcs();
  }
  return { uploads, pipelines };
}
