/**
 * `npm run bench [-- --smoke | --full] [--rounds=N] [--only=schedule,pipeline,scale,judge,generate,horizontal] [--out=FILE] [--cpu-prof] [--judge-env=K=V,…] [--gen-env=K=V,…]`
 *
 * Measures evalgate against baselines taken in the same invocation (warm-up
 * first, median of the rounds), prints the tables and writes BENCHMARKS.md
 * (smoke mode writes to a temporary file unless --out is given). Everything
 * runs on a fresh database and queue prefix that are removed at the end.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JUDGE_CONCURRENCY, openBench, profileDir, type Bench, type BenchOptions } from './lib/context.ts';
import { loadAvg, machineInfo, type MachineInfo } from './lib/machine.ts';
import { killAllNow, ROOT, stopAll } from './lib/procs.ts';
import { benchGenerate, type GenerateResults } from './parts/generate.ts';
import { benchJudge, JUDGE_WORKER_ENV, type JudgeResult } from './parts/judge.ts';
import { baselineBullmq, baselineInsert, benchSizes, CHUNK_SIZE, NOOP_CONCURRENCY, WORKER_CONCURRENCY, type BaselineRound, type PipelineConfig, type SizesResult } from './parts/pipeline.ts';
import { benchSchedule, TARGET_LABELS, type ScheduleResult, type TargetName } from './parts/schedule.ts';
import { summarizeProfiles } from './profile-summary.ts';
import { fmt, mb, median, medianOf, ms, pct, seconds, spread, table } from './lib/stats.ts';

const PARTS = ['schedule', 'pipeline', 'scale', 'judge', 'generate', 'horizontal'] as const;

function parseArgs(argv: string[]): BenchOptions & { out: string } {
  const flag = (name: string) => argv.includes(`--${name}`);
  const value = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  for (const a of argv) {
    if (!/^--(smoke|full|cpu-prof|rounds=\d+|only=[a-z,]+|out=.+|(judge|gen)-env=([A-Z_]+=\w+,?)+)$/.test(a)) {
      process.stderr.write(
        `bench: unknown argument ${a}\nusage: npm run bench -- [--smoke | --full] [--rounds=N] [--only=${PARTS.join(',')}] [--out=FILE] [--cpu-prof] [--judge-env=WORKER_CONCURRENCY=2,JUDGE_CHUNK_PARALLELISM=32] [--gen-env=JUDGE_CHUNK_SIZE=100]\n`,
      );
      process.exit(2);
    }
  }
  const smoke = flag('smoke');
  const only = value('only');
  const parts = only ? new Set(only.split(',')) : null;
  for (const p of parts ?? []) {
    if (!(PARTS as readonly string[]).includes(p)) {
      process.stderr.write(`bench: unknown part ${p} (parts: ${PARTS.join(', ')})\n`);
      process.exit(2);
    }
  }
  return {
    smoke,
    full: flag('full'),
    rounds: Math.max(1, Number(value('rounds') ?? (smoke ? 1 : 3))),
    only: parts,
    cpuProfDir: flag('cpu-prof') ? profileDir() : undefined,
    judgeEnv: envFlag(value('judge-env')),
    genEnv: envFlag(value('gen-env')),
    out: value('out') ?? (smoke ? join(tmpdir(), `evalgate-bench-smoke-${process.pid}.md`) : join(ROOT, 'BENCHMARKS.md')),
  };
}

function envFlag(v: string | undefined): Record<string, string> {
  return Object.fromEntries((v ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
}

interface Results {
  machine: MachineInfo;
  loadAfter: string;
  wallMs: number;
  schedule?: ScheduleResult;
  baselineA?: BaselineRound[];
  baselineB?: BaselineRound[];
  sizes?: SizesResult;
  judge?: JudgeResult;
  generate?: GenerateResults;
  pipelineN: number;
  sizeList: number[];
  profiles?: string;
}

const wants = (o: BenchOptions, part: (typeof PARTS)[number]) => o.only === null || o.only.has(part);

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const pipelineN = opts.smoke ? 1_000 : 100_000;
  const sizeList = opts.smoke ? [500, 1_000] : opts.full ? [10_000, 100_000, 1_000_000] : [10_000, 100_000];
  const judgeN = opts.smoke ? 200 : 5_000;
  const generateN = opts.smoke ? 200 : 5_000;

  const state: { bench?: Bench } = {};
  const onSignal = () => {
    killAllNow();
    process.stderr.write('bench: interrupted; cleaning up\n');
    void (state.bench?.close() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killAllNow);

  const b = await openBench(opts);
  state.bench = b;
  let results: Results;
  try {
    const machine = await machineInfo(b.stack.env.DATABASE_URL, b.stack.redis);
    b.log(`${opts.smoke ? 'smoke' : opts.full ? 'full' : 'standard'} bench, ${opts.rounds} round(s); load average ${machine.loadAvg}`);
    results = { machine, loadAfter: '', wallMs: 0, pipelineN, sizeList };
    if (wants(opts, 'schedule')) results.schedule = await benchSchedule(b);
    if (wants(opts, 'pipeline')) {
      const warm = Math.max(100, pipelineN / 10);
      results.baselineA = await baselineBullmq(b, pipelineN, warm);
      results.baselineB = await baselineInsert(b, pipelineN, warm);
    }
    const needSizes = wants(opts, 'pipeline') || wants(opts, 'scale') || wants(opts, 'horizontal');
    if (needSizes) {
      const sizes = wants(opts, 'scale') ? sizeList : [pipelineN];
      results.sizes = await benchSizes(b, sizes, wants(opts, 'horizontal') ? pipelineN : null, [1, 2, 4]);
    }
    if (wants(opts, 'judge')) results.judge = await benchJudge(b, judgeN, opts.smoke ? 20 : 200);
    if (wants(opts, 'generate')) results.generate = await benchGenerate(b, generateN, opts.smoke ? 20 : 200);
    if (opts.cpuProfDir) results.profiles = summarizeProfiles(opts.cpuProfDir, 12);
  } finally {
    await stopAll();
    await b.close();
  }
  results.wallMs = performance.now() - t0;
  results.loadAfter = loadAvg();

  const md = report(opts, results);
  writeFileSync(opts.out, md);
  process.stdout.write(`${terminalView(md)}\n`);
  process.stdout.write(`\nwrote ${opts.out} (${seconds(results.wallMs)})\n`);
}

// ---------------------------------------------------------------- report

interface Target {
  figure: string;
  measured: string;
  baseline: string;
  ratio: string;
  target: string;
  verdict: string;
}

const verdict = (ok: boolean, miss: string) => (ok ? 'met' : `MISSED: ${miss}`);

function pipelineAt(r: Results, items: number, workers: number): PipelineConfig | undefined {
  return r.sizes?.pipelines.find((p) => p.items === items && p.workers === workers);
}

/** Per-item cost of a configuration: wall µs/item and CPU µs/item (worker processes, Postgres backends). */
function costs(p: PipelineConfig) {
  const wall = medianOf(p.runs, (m) => (m.totalMs * 1000) / m.items);
  const workerCpu = medianOf(p.runs, (m) => (Object.entries(m.cpuMs).filter(([k]) => k.startsWith('worker')).reduce((a, [, v]) => a + v, 0) * 1000) / m.items);
  const apiCpu = medianOf(p.runs, (m) => (Object.entries(m.cpuMs).filter(([k]) => k.startsWith('api')).reduce((a, [, v]) => a + v, 0) * 1000) / m.items);
  const pgCpu = medianOf(p.runs, (m) => (m.pgCpuMs * 1000) / m.items);
  return { wall, workerCpu, apiCpu, pgCpu };
}

/** CPU ms of the watched (worker) processes per item, median over the rounds. */
function workerCpuPerItem(rounds: readonly { cpuMs: Record<string, number>; items: number }[]): number {
  return medianOf(rounds, (x) => Object.values(x.cpuMs).reduce((a, v) => a + v, 0) / x.items);
}

function targets(r: Results): Target[] {
  const out: Target[] = [];
  const s = r.schedule;
  if (s) {
    const rest = medianOf(s.rounds.rest, (x) => x.rps);
    const plain = medianOf(s.rounds.plain, (x) => x.rps);
    const p99 = medianOf(s.rounds.rest, (x) => x.p99);
    const errors = s.rounds.rest.reduce((a, x) => a + x.errors, 0);
    const ratio = rest / plain;
    out.push({ figure: `schedule REST req/s (${s.connections} connections)`, measured: fmt(rest), baseline: `(b) ${fmt(plain)}`, ratio: pct(ratio), target: '≥ 60 % of (b)', verdict: verdict(ratio >= 0.6, `${((0.6 - ratio) * 100).toFixed(0)} points short (${fmt(0.6 * plain - rest)} req/s)`) });
    out.push({ figure: 'schedule REST p99', measured: ms(p99), baseline: `(b) ${ms(medianOf(s.rounds.plain, (x) => x.p99))}`, ratio: '', target: '≤ 50 ms', verdict: verdict(p99 <= 50, `${ms(p99 - 50)} over (${(p99 / 50).toFixed(1)}×)`) });
    out.push({ figure: 'schedule REST errors (all rounds)', measured: fmt(errors), baseline: '', ratio: '', target: '0', verdict: verdict(errors === 0, `${errors} errors`) });
    const trpc = medianOf(s.rounds.trpc, (x) => x.rps);
    out.push({ figure: 'schedule tRPC req/s', measured: fmt(trpc), baseline: `(b) ${fmt(plain)}`, ratio: pct(trpc / plain), target: '(no target)', verdict: '' });
  }
  const one = pipelineAt(r, r.pipelineN, 1);
  if (one) {
    const v = medianOf(one.runs, (m) => m.itemsPerS);
    if (r.baselineA) {
      const a = medianOf(r.baselineA, (x) => x.itemsPerS);
      out.push({ figure: `pipeline items/s (${fmt(r.pipelineN)} items, 1 worker)`, measured: fmt(v), baseline: `(a) ${fmt(a)}`, ratio: `${(v / a).toFixed(2)}×`, target: '≥ 2× (a)', verdict: verdict(v >= 2 * a, `${(v / a).toFixed(2)}× instead of 2× (${fmt(2 * a - v)} items/s short)`) });
    }
    if (r.baselineB) {
      const bb = medianOf(r.baselineB, (x) => x.itemsPerS);
      out.push({ figure: 'pipeline items/s vs raw INSERT', measured: fmt(v), baseline: `(b) ${fmt(bb)}`, ratio: pct(v / bb), target: '≥ 50 % of (b)', verdict: verdict(v >= 0.5 * bb, `${((0.5 - v / bb) * 100).toFixed(0)} points short`) });
    }
  }
  const pipes = (r.sizes?.pipelines ?? []).filter((p) => p.workers === 1).sort((x, y) => x.items - y.items);
  const largest = pipes[pipes.length - 1];
  const smallest = pipes[0];
  if (largest) {
    const at = `${fmt(largest.items)} items${largest.items < 1_000_000 ? '; the target is at 1M (--full)' : ''}`;
    out.push({ figure: `worker peak RSS (${at})`, measured: mb(largest.workerPeakRssMb), baseline: '', ratio: '', target: '≤ 256 MB', verdict: verdict(largest.workerPeakRssMb <= 256, `${mb(largest.workerPeakRssMb - 256)} over`) });
  }
  const up = r.sizes?.uploads.slice().sort((x, y) => x.items - y.items).pop();
  if (up) {
    const at = `${fmt(up.items)} items${up.items < 1_000_000 ? '; the target is at 1M (--full)' : ''}`;
    out.push({ figure: `API peak RSS during upload (${at})`, measured: mb(up.apiRssAfterMb), baseline: '', ratio: '', target: '≤ 256 MB', verdict: verdict(up.apiRssAfterMb <= 256, `${mb(up.apiRssAfterMb - 256)} over`) });
  }
  if (largest && smallest && largest !== smallest) {
    const cl = costs(largest);
    const cs = costs(smallest);
    const wallRatio = cl.wall / cs.wall;
    const cpuRatio = cl.workerCpu / cs.workerCpu;
    out.push({ figure: `cost per item, ${fmt(largest.items)} vs ${fmt(smallest.items)} (wall)`, measured: `${fmt(cl.wall, 1)} µs`, baseline: `${fmt(cs.wall, 1)} µs`, ratio: `${wallRatio.toFixed(2)}×`, target: 'flat (≤ 1.25×)', verdict: verdict(wallRatio <= 1.25, `${wallRatio.toFixed(2)}×`) });
    out.push({ figure: `cost per item, ${fmt(largest.items)} vs ${fmt(smallest.items)} (worker CPU)`, measured: `${fmt(cl.workerCpu, 1)} µs`, baseline: `${fmt(cs.workerCpu, 1)} µs`, ratio: `${cpuRatio.toFixed(2)}×`, target: 'flat (≤ 1.25×)', verdict: verdict(cpuRatio <= 1.25, `${cpuRatio.toFixed(2)}×`) });
  }
  if (r.judge) {
    const v = medianOf(r.judge.rounds, (m) => m.itemsPerS);
    const ratio = v / r.judge.idealPerS;
    out.push({ figure: `LLM judge items/s (${fmt(r.judge.items)} items)`, measured: fmt(v), baseline: `ideal ${fmt(r.judge.idealPerS)}`, ratio: pct(ratio), target: '≥ 80 % of ideal', verdict: verdict(ratio >= 0.8, `${((0.8 - ratio) * 100).toFixed(0)} points short`) });
  }
  for (const g of r.generate?.variants ?? []) {
    const v = medianOf(g.rounds, (m) => m.itemsPerS);
    const ratio = v / g.idealPerS;
    const want = g.variant === 'llm_judge' ? 0.85 : 0.9;
    const label = g.variant === 'llm_judge' ? 'generate + LLM judge' : 'generate + exact_match';
    out.push({ figure: `${label} items/s (${fmt(g.items)} items)`, measured: fmt(v), baseline: `ideal ${fmt(g.idealPerS)}`, ratio: `${(ratio * 100).toFixed(1)} %`, target: `≥ ${want * 100} % of ideal`, verdict: verdict(ratio >= want, `${((want - ratio) * 100).toFixed(1)} points short`) });
  }
  const gen = r.generate?.variants.find((g) => g.variant === 'exact_match');
  if (gen) {
    out.push({ figure: 'worker CPU per generated item (generate + exact_match)', measured: ms(workerCpuPerItem(gen.rounds), 2), baseline: '', ratio: '', target: '(no target)', verdict: '' });
  }
  const h1 = pipelineAt(r, r.pipelineN, 1);
  for (const w of [2, 4]) {
    const h = pipelineAt(r, r.pipelineN, w);
    if (h && h1) {
      const a = medianOf(h.runs, (m) => m.itemsPerS);
      const base = medianOf(h1.runs, (m) => m.itemsPerS);
      out.push({ figure: `pipeline with ${w} worker processes`, measured: fmt(a), baseline: `1 worker ${fmt(base)}`, ratio: `${(a / base).toFixed(2)}×`, target: `(no target; ${r.machine.nproc} cores)`, verdict: '' });
    }
  }
  return out;
}

function report(o: BenchOptions, r: Results): string {
  const m = r.machine;
  const lines: string[] = [];
  const mode = o.smoke ? 'SMOKE run (tiny sizes, 1 round: checks the harness, the numbers mean nothing)' : o.full ? 'full run (--full: 1,000,000 items)' : 'standard run (without --full)';
  lines.push('# Benchmarks', '');
  lines.push(
    `Generated by \`npm run bench\` (bench/run.ts) on ${m.date}: ${mode}. Every figure is the median of ${o.rounds} measured round(s) after a warm-up, ` +
      'and every baseline was measured in the same invocation on the same machine. Regenerate with `npm run bench` (add `--full` for the 1,000,000-item sizes).',
    '',
  );
  const load1 = (l: string) => Number(l.split(' ')[0]);
  const busy = Math.max(load1(m.loadAvg), load1(r.loadAfter)) > m.nproc / 2;
  lines.push(
    busy
      ? `> **Measured on a busy machine.** Other work ran on this ${m.nproc}-core machine during the run ` +
          `(load average ${m.loadAvg} at the start, ${r.loadAfter} at the end), and PostgreSQL and Redis may be shared with it. ` +
          'Absolute numbers are noisy and low; ratios to the baselines (measured interleaved, in the same minutes) are the more trustworthy part. ' +
          'Re-run on a quiet machine before quoting any of them.'
      : `> Load average ${m.loadAvg} at the start, ${r.loadAfter} at the end: the machine looked quiet during the run.`,
    '',
  );
  lines.push('## Machine', '');
  lines.push(
    table(
      ['', ''],
      [
        ['cores (nproc)', String(m.nproc)],
        ['memory', `${m.memoryGiB.toFixed(1)} GiB`],
        ['CPU', m.cpuModel],
        ['kernel', m.kernel],
        ['Node.js', m.node],
        ['PostgreSQL', m.postgres],
        ['Redis', m.redis],
        ['date', m.date],
        ['bench wall time', seconds(r.wallMs)],
      ],
    ),
    '',
  );
  lines.push('## Targets', '');
  lines.push(table(['figure', 'measured', 'baseline', 'ratio', 'target', 'verdict'], targets(r).map((t) => [t.figure, t.measured, t.baseline, t.ratio, t.target, t.verdict])), '');

  if (r.schedule) {
    const s = r.schedule;
    lines.push('## 1. Schedule endpoint', '');
    lines.push(
      `autocannon (its CLI with \`--json\`, in its own process) at ${s.connections} connections for ${s.durationS} s per round; rounds interleave the four targets; ` +
        'before each round the tenant\'s runs are deleted and the run-start queue drained, so every round starts from zero pending runs. ' +
        'evalgate runs as `main.ts api` with LOG_LEVEL=warn and write limits / active-run cap raised out of the way; each request authenticates a real API key, ' +
        'counts against the (Redis) write limits, checks the active-run cap, inserts the run and enqueues run-start. Baseline (b) does only the insert and the enqueue. ' +
        'Latencies are autocannon\'s (1 ms resolution).',
      '',
    );
    const plain = medianOf(s.rounds.plain, (x) => x.rps);
    const rows = (Object.keys(TARGET_LABELS) as TargetName[]).map((name) => {
      const rs = s.rounds[name];
      const rps = medianOf(rs, (x) => x.rps);
      return [
        TARGET_LABELS[name],
        fmt(rps),
        spread(rs.map((x) => x.rps)),
        ms(medianOf(rs, (x) => x.p50)),
        ms(medianOf(rs, (x) => x.p99)),
        ms(medianOf(rs, (x) => x.p999)),
        fmt(rs.reduce((a, x) => a + x.errors, 0)),
        pct(rps / plain),
        ms(medianOf(rs, (x) => x.cpuPerReqMs), 2),
        `≈ ${ms(medianOf(rs, (x) => x.pgCpuPerReqMs), 2)}`,
        fmt(medianOf(rs, (x) => x.pgXactPerReq), 2),
      ];
    });
    lines.push(table(['target', 'req/s', 'rounds min–max', 'p50', 'p99', 'p99.9', 'errors', 'vs (b)', 'server CPU / req', 'Postgres CPU / req', 'Postgres xacts / req'], rows), '');
    lines.push(
      'Server CPU / req: user + system CPU of the target process during the round (from /proc) over its successful requests; ' +
        'Postgres CPU / req: the same for the bench database\'s backends (approximate); Postgres xacts / req: committed transactions of the bench database (pg_stat_database) per request, i.e. round trips that commit. On 2 cores, throughput is roughly 2 cores / (sum of all CPU per request, autocannon\'s included).',
      '',
    );
    if (s.capProbe.length) {
      lines.push(
        'The active-run cap check (the count inside insertPendingRun\'s statement, run on its own from the bench process, median wall time) with the tenant\'s pending runs already in the table:',
        '',
        table(
          ['pending runs', ...[...new Set(s.capProbe.map((p) => p.cap))].map((c) => `cap ${fmt(c)}`)],
          [...new Set(s.capProbe.map((p) => p.pending))].map((pending) => [fmt(pending), ...s.capProbe.filter((p) => p.pending === pending).map((p) => ms(p.ms, 2))]),
        ),
        '',
      );
    }
    lines.push(
      `Runs created per REST round (all left pending, no worker running): ${s.pendingAfterRound.map((n) => fmt(n)).join(', ')}. ` +
        `The API process's peak RSS over the whole part: ${mb(s.apiPeakRssMb)}.`,
      '',
    );
  }

  if (r.baselineA || r.sizes) {
    lines.push('## 2. Run pipeline', '');
    const one = pipelineAt(r, r.pipelineN, 1);
    lines.push(
      `A ${fmt(r.pipelineN)}-item dataset (NDJSON upload), \`exact_match\`, 9 in 10 items passing; scheduled over REST and timed on PostgreSQL's clock from the run row's ` +
        '`created_at` to its `completed_at` (time to first result: to the earliest result row). One `main.ts worker` process with the defaults ' +
        `(WORKER_CONCURRENCY=${WORKER_CONCURRENCY}, CHUNK_SIZE=${CHUNK_SIZE}). After each round the run is deleted (its results and chunks go with it) and the tables vacuumed. ` +
        `Baseline (a): one no-op BullMQ job per item (addBulk of 1,000 from the bench process, a plain Worker at concurrency ${NOOP_CONCURRENCY} in its own process, evalgate's chunk job options). ` +
        `Baseline (b): the same number of result rows as multi-row INSERTs of ${CHUNK_SIZE} rows over ${WORKER_CONCURRENCY} \`pg\` connections into a table \`LIKE eval_run_items INCLUDING ALL\` (no foreign keys).`,
      '',
    );
    const rows: string[][] = [];
    if (one) {
      rows.push([
        'evalgate: schedule → completed',
        fmt(medianOf(one.runs, (x) => x.itemsPerS)),
        spread(one.runs.map((x) => x.itemsPerS)),
        seconds(medianOf(one.runs, (x) => x.totalMs)),
        ms(medianOf(one.runs, (x) => x.firstResultMs)),
      ]);
    }
    for (const [label, rs] of [
      ['baseline (a): BullMQ, one no-op job per item', r.baselineA],
      ['baseline (b): raw multi-row INSERT of the results', r.baselineB],
    ] as const) {
      if (rs) rows.push([label, fmt(medianOf(rs, (x) => x.itemsPerS)), spread(rs.map((x) => x.itemsPerS)), seconds(medianOf(rs, (x) => x.totalMs)), ms(medianOf(rs, (x) => x.firstResultMs))]);
    }
    lines.push(table(['', 'items/s', 'rounds min–max', 'total', 'time to first result'], rows), '');
    if (one) {
      const c = costs(one);
      lines.push(
        `Where the time goes (per item, median): wall ${fmt(c.wall, 1)} µs; CPU in the worker process ${fmt(c.workerCpu, 1)} µs, ` +
          `in the bench database's PostgreSQL backends ≈ ${fmt(c.pgCpu, 1)} µs, in the API process ${fmt(c.apiCpu, 1)} µs ` +
          `(run start, i.e. schedule → \`started_at\`: ${ms(medianOf(one.runs, (x) => x.startMs))}).`,
        '',
      );
    }
  }

  if (r.sizes) {
    lines.push('## 3. Scale curve', '');
    lines.push(
      'Per size, a fresh API process takes a warm-up upload and then the measured NDJSON uploads (one new dataset each, streamed from the bench process), ' +
        'then a fresh worker process runs a warm-up run and the measured runs. Peak RSS is VmHWM from /proc/<pid>/status, i.e. the largest resident size over the process\'s whole life.',
      '',
    );
    const rows = r.sizes.pipelines
      .filter((p) => p.workers === 1)
      .map((p) => {
        const c = costs(p);
        return [
          fmt(p.items),
          fmt(medianOf(p.runs, (x) => x.itemsPerS)),
          ms(medianOf(p.runs, (x) => x.firstResultMs)),
          `${fmt(c.wall, 1)} µs`,
          `${fmt(c.workerCpu, 1)} µs`,
          `≈ ${fmt(c.pgCpu, 1)} µs`,
          p.runs.map((x) => `${x.autovacuums} / ${fmt(x.autovacuumActiveMs)} ms`).join(', '),
          mb(p.workerPeakRssMb),
          mb(p.apiPeakRssMb),
        ];
      });
    lines.push(table(['items', 'items/s', 'first result', 'wall / item', 'worker CPU / item', 'Postgres CPU / item', 'autovacuum: runs finished / time seen busy, per round', 'worker peak RSS', 'API peak RSS'], rows), '');
    const urows = r.sizes.uploads.map((u) => [fmt(u.items), seconds(median(u.ms)), fmt((u.items / median(u.ms)) * 1000), mb(u.apiRssBeforeMb), mb(u.apiRssAfterMb)]);
    lines.push('NDJSON upload (`POST /v1/datasets/{id}/items/upload`, ~100-byte lines):', '');
    lines.push(table(['items', 'time', 'items/s', 'API peak RSS after warm-up', 'API peak RSS after the uploads'], urows), '');
    if (!o.full && !o.smoke) lines.push('1,000,000 items are measured only with `npm run bench -- --full`.', '');
  }

  if (r.judge) {
    const j = r.judge;
    lines.push('## 4. LLM judge', '');
    lines.push(
      `${fmt(j.items)} items, \`llm_judge\` (boolean) against test/helpers/fake-llm.ts answering after 100 ms, provider configured at concurrency 64 ` +
        `(EVALGATE_PROVIDERS), one worker process with ${Object.entries({ ...JUDGE_WORKER_ENV, ...o.judgeEnv }).map(([k, v]) => `${k}=${v}`).join(', ')}. Ideal: 64 / 0.1 s = ${fmt(j.idealPerS)} items/s.`,
      '',
    );
    lines.push(
      table(
        ['items/s', 'rounds min–max', '% of ideal', 'total', 'first result', 'max in flight at the provider', 'mean in flight (items/s × 0.1 s)', 'requests', 'worker CPU / item', 'worker peak RSS'],
        [
          [
            fmt(medianOf(j.rounds, (x) => x.itemsPerS)),
            spread(j.rounds.map((x) => x.itemsPerS)),
            pct(medianOf(j.rounds, (x) => x.itemsPerS) / j.idealPerS),
            seconds(medianOf(j.rounds, (x) => x.totalMs)),
            ms(medianOf(j.rounds, (x) => x.firstResultMs)),
            fmt(Math.max(...j.rounds.map((x) => x.maxInFlight))),
            fmt(medianOf(j.rounds, (x) => x.itemsPerS) * 0.1),
            fmt(medianOf(j.rounds, (x) => x.requests)),
            `${fmt(medianOf(j.rounds, (x) => (Object.values(x.cpuMs).reduce((a, v) => a + v, 0) * 1000) / x.items), 0)} µs`,
            mb(j.workerPeakRssMb),
          ],
        ],
      ),
      '',
    );
  }

  const horiz = (r.sizes?.pipelines ?? []).filter((p) => p.items === r.pipelineN);
  if (horiz.length > 1) {
    lines.push('## 5. Horizontal: worker processes', '');
    lines.push(
      `The ${fmt(r.pipelineN)}-item pipeline with 1, 2 and 4 \`main.ts worker\` processes (each WORKER_CONCURRENCY=${WORKER_CONCURRENCY}) on the same Redis and PostgreSQL. ` +
        `This machine has ${m.nproc} cores shared by the workers, PostgreSQL, Redis, the API and the bench itself, so the curve flattens once those cores are busy; it says nothing about more cores.`,
      '',
    );
    const base = medianOf(horiz[0]?.runs ?? [], (x) => x.itemsPerS);
    lines.push(
      table(
        ['worker processes', 'items/s', 'rounds min–max', 'vs 1 worker', 'first result', 'worker CPU / item (all workers)', 'Postgres CPU / item', 'largest worker peak RSS'],
        horiz.map((p) => {
          const c = costs(p);
          const v = medianOf(p.runs, (x) => x.itemsPerS);
          return [String(p.workers), fmt(v), spread(p.runs.map((x) => x.itemsPerS)), `${(v / base).toFixed(2)}×`, ms(medianOf(p.runs, (x) => x.firstResultMs)), `${fmt(c.workerCpu, 1)} µs`, `≈ ${fmt(c.pgCpu, 1)} µs`, mb(p.workerPeakRssMb)];
        }),
      ),
      '',
    );
  }

  if (r.generate) {
    const g = r.generate;
    lines.push('## 6. Generation (chat_completion target)', '');
    lines.push(
      `Runs scheduled with \`target: { type: 'chat_completion', provider, model, messages: [{ role: 'user', content: '{{input.question}}' }] }\` and \`cache: false\` ` +
        '(inserted with the service functions, as the API does), against test/helpers/fake-llm.ts, which answers a generation with the prompt upper-cased after 100 ms ' +
        `(nine in ten items expect that), provider configured at concurrency ${JUDGE_CONCURRENCY} (EVALGATE_PROVIDERS); one worker process with ` +
        `${Object.entries(g.workerEnv).map(([k, v]) => `${k}=${v}`).join(', ')}. Scored by \`exact_match\` (one call per item: ideal 64 / 0.1 s = 640 items/s) ` +
        'and by an `llm_judge` on the same provider (two calls per item on one budget of 64: ideal 320 items/s). Every round checks that every item has a result, ' +
        'that the provider saw exactly one generation (and one judging) per item, and that no more than 64 requests were in flight at it.',
      '',
    );
    lines.push(
      table(
        ['scored by', 'items/s', 'rounds min–max', '% of ideal', 'total', 'first result', 'provider called (first request → last answer)', 'slots in use meanwhile', 'max in flight at the provider', 'mean in flight (items/s × calls × 0.1 s)', 'requests', 'worker CPU / item'],
        g.variants.map((v) => {
          const ips = medianOf(v.rounds, (x) => x.itemsPerS);
          return [
            v.variant,
            fmt(ips),
            spread(v.rounds.map((x) => x.itemsPerS)),
            pct(ips / v.idealPerS),
            seconds(medianOf(v.rounds, (x) => x.totalMs)),
            ms(medianOf(v.rounds, (x) => x.firstResultMs)),
            seconds(medianOf(v.rounds, (x) => x.callWindowMs)),
            pct(medianOf(v.rounds, (x) => x.slotUse)),
            fmt(Math.max(...v.rounds.map((x) => x.maxInFlight))),
            fmt(ips * v.callsPerItem * 0.1),
            fmt(medianOf(v.rounds, (x) => x.requests)),
            ms(workerCpuPerItem(v.rounds), 2),
          ];
        }),
      ),
      '',
      `Worker peak RSS over the part: ${mb(g.workerPeakRssMb)}. Worker CPU / item: user + system CPU of the worker process during the run (from /proc) over the run's items. ` +
        'Slots in use: requests × 0.1 s / (64 × the time from the first request\'s arrival at the provider to the last answer), i.e. how full the budget was while the run called it; ' +
        'the rest of the total (before the first request, after the last answer) is the run start, the first chunks loading, and the last record. ' +
        'Set BENCH_GEN_TIMELINE=1 to log the requests in flight every 100 ms of each round.',
      '',
    );
  }

  if (r.profiles) lines.push('## CPU profiles (--cpu-prof)', '', 'Profiled runs are slower; their figures above are not comparable with unprofiled ones.', '', r.profiles, '');

  const analysis = join(ROOT, 'bench', 'analysis.md');
  if (!o.smoke && existsSync(analysis)) lines.push(readFileSync(analysis, 'utf8').trim(), '');
  return `${lines.join('\n').trim()}\n`;
}

/** The report without its long prose paragraphs: headings, tables and short notes. */
function terminalView(md: string): string {
  return md
    .split('\n')
    .filter((l) => l.startsWith('#') || l.startsWith('|') || l === '' || l.length < 160)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  killAllNow();
  process.exit(1);
});
