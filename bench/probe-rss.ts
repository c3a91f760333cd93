/**
 * Peak RSS probe (not part of `npm run bench`): starts an API process and a
 * worker process the way the bench does, and reads VmHWM (/proc/<pid>/status)
 * and the V8 heap after start, after a warm-up, after one NDJSON upload of
 * --items and after one run over it, with the throughput of both; then a
 * table. Each variant gets fresh processes; the dataset is deleted after each.
 *
 *   node --import tsx bench/probe-rss.ts [--items=100000] [--rounds=1] [--start-only] [--no-run]
 *        [--flags='start|none|--max-old-space-size=160'] [--entry=server/main.ts]
 *
 * --flags: node flags of both processes, one variant per `|`: `start` = those of
 *   `npm run start:api|worker` (package.json), `none` = no flags, else the flags themselves.
 * --entry: the script both processes run; a .js entry (e.g. a precompiled build) runs without tsx.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { makeEval, makeTenant } from '../test/helpers/factories.ts';
import { freePort } from '../test/helpers/processes.ts';
import { openBench, startScriptNodeFlags, type Bench } from './lib/context.ts';
import { createDatasetViaApi, measureRun, purgeNow, restScheduler, uploadNdjson, waitForWorkers } from './lib/fixtures.ts';
import { ROOT, sleep, spawnTs, until, waitHttp, type Proc } from './lib/procs.ts';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '100000' },
    /** node flags of the evalgate processes; several, separated by `|`, are measured in turn */
    flags: { type: 'string', default: 'start' },
    /** the script both processes run; a .js entry (a precompiled build) runs without tsx */
    entry: { type: 'string', default: 'server/main.ts' },
    /** rounds over the variants (interleaved, so a change of machine load hits every variant alike) */
    rounds: { type: 'string', default: '1' },
    'start-only': { type: 'boolean', default: false },
    'no-run': { type: 'boolean', default: false },
  },
});
const items = Number(values.items);
const variants = (values.flags as string).split('|').map((v) => v.trim());

function status(pid: number, field: string): number {
  try {
    return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

function load(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** Preloaded into every process: on SIGUSR2, prints its V8 heap and external memory to stderr as one JSON line. */
const REPORTER = `data:text/javascript,${encodeURIComponent(
  "process.on('SIGUSR2',()=>{const m=process.memoryUsage();process.stderr.write('MEM '+JSON.stringify({heapUsed:m.heapUsed,heapTotal:m.heapTotal,external:m.external,arrayBuffers:m.arrayBuffers,rss:m.rss})+'\\n')})",
)}`;

/** Asks a process started with REPORTER for its memory; MB figures. */
async function heapOf(p: Proc): Promise<string> {
  const before = p.output().length;
  p.child.kill('SIGUSR2');
  for (let i = 0; i < 50; i++) {
    const m = /MEM (\{.*\})/.exec(p.output().slice(before));
    if (m) {
      const v = JSON.parse(m[1] as string) as Record<string, number>;
      const mb = (k: string) => ((v[k] ?? 0) / 1048576).toFixed(0);
      return `heap ${mb('heapUsed')}/${mb('heapTotal')} MB, external ${mb('external')} MB (buffers ${mb('arrayBuffers')})`;
    }
    await sleep(20);
  }
  return 'heap ?';
}

/** Like spawnTs, but a .js entry runs without the tsx loader (to compare with a precompiled build). */
function start(b: Bench, name: string, mode: 'api' | 'worker', variant: string, extra: Record<string, string>): Proc {
  const entry = values.entry as string;
  const env = b.evalgateEnv(extra);
  const flags = variant === 'start' ? startScriptNodeFlags(mode) : variant === 'none' ? [] : variant.split(/\s+/);
  if (entry.endsWith('.ts')) return spawnTs(name, entry, [mode], { env, nodeArgs: [...flags, '--import', REPORTER] });
  const child = spawn(process.execPath, [...flags, '--import', REPORTER, entry, mode], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Prints a process's memory; returns its VmHWM (MB). */
async function line(what: string, p: Proc, extra = ''): Promise<number> {
  const hwm = status(p.pid, 'VmHWM');
  const rss = status(p.pid, 'VmRSS');
  process.stdout.write(`${what.padEnd(26)} VmHWM ${hwm.toFixed(0).padStart(4)} MB  VmRSS ${rss.toFixed(0).padStart(4)} MB  ${await heapOf(p)}  load ${load()}  ${extra}\n`);
  return hwm;
}

interface Row {
  variant: string;
  apiStart: number;
  apiWarm: number;
  apiUpload: number;
  uploadItemsPerS: number;
  workerStart: number;
  workerWarm: number;
  workerRun: number;
  runItemsPerS: number;
  workerCpuUsPerItem: number;
  load: string;
}

async function main(): Promise<void> {
  process.stdout.write(`entry ${values.entry}, items ${items}, variants ${variants.join(' | ')}, load ${load()}\n`);
  const b = await openBench({ smoke: false, full: false, rounds: 1, only: null, judgeEnv: {}, genEnv: {} });
  const procs: Proc[] = [];
  const rows: Row[] = [];
  try {
    const c = b.stack.container;
    const t = await makeTenant(c, 'probe-rss');
    const ev = await makeEval(c, t.id, { type: 'exact_match' });
    const key = t.keys.member;

    for (let round = 1; round <= Number(values.rounds); round++) {
      for (const variant of variants) {
        process.stdout.write(`-- round ${round}, flags ${variant}\n`);
        const row: Row = { variant, apiStart: 0, apiWarm: 0, apiUpload: 0, uploadItemsPerS: 0, workerStart: 0, workerWarm: 0, workerRun: 0, runItemsPerS: 0, workerCpuUsPerItem: 0, load: load() };
        const port = await freePort();
        const api = start(b, 'api', 'api', variant, { PORT: String(port) });
        procs.push(api);
        const base = `http://127.0.0.1:${port}`;
        await waitHttp(`${base}/healthz`, api);
        await sleep(500);
        row.apiStart = await line('api started', api);
        const worker = start(b, 'worker', 'worker', variant, {});
        procs.push(worker);
        await waitForWorkers(b, 1, [worker]);
        await sleep(500);
        row.workerStart = await line('worker started', worker);

        const warmDs = await createDatasetViaApi(base, key, 'warm');
        await uploadNdjson(base, key, warmDs, 2_000);
        row.apiWarm = await line('api warm (2k upload)', api);
        await measureRun(b, restScheduler(base, key, warmDs, ev.evalVersionId), [worker], 120_000);
        row.workerWarm = await line('worker warm (2k run)', worker);
        const datasets = [warmDs];
        if (!values['start-only']) {
          const ds = await createDatasetViaApi(base, key, 'big');
          datasets.push(ds);
          const ms = await uploadNdjson(base, key, ds, items);
          row.uploadItemsPerS = (items / ms) * 1000;
          row.apiUpload = await line(`api after ${items} upload`, api, `${ms.toFixed(0)} ms, ${row.uploadItemsPerS.toFixed(0)} items/s`);
          if (!values['no-run']) {
            await b.pg.query('vacuum analyze dataset_items');
            const run = await measureRun(b, restScheduler(base, key, ds, ev.evalVersionId), [worker], Math.max(120_000, items * 3));
            row.runItemsPerS = run.itemsPerS;
            row.workerCpuUsPerItem = ((run.cpuMs.worker ?? 0) / items) * 1000;
            row.workerRun = await line(`worker after ${items} run`, worker, `${row.runItemsPerS.toFixed(0)} items/s, worker CPU ${row.workerCpuUsPerItem.toFixed(1)} µs/item`);
          }
        }
        row.load += ` → ${load()}`;
        rows.push(row);
        await Promise.all([api.stop(), worker.stop()]);
        await until(async () => (await c.queues.runChunk.getWorkersCount()) === 0, 'worker to disconnect', 30_000, 100);
        for (const ds of datasets) await b.pg.query('delete from datasets where id = $1', [ds]);
        await purgeNow(b);
        await b.pg.query('vacuum analyze dataset_items');
      }
    }
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await b.close();
  }
  const f = (n: number) => (n ? n.toFixed(0) : '–');
  process.stdout.write(
    `\n| node flags | api start | api warm | api ${items} upload | upload items/s | worker start | worker warm | worker ${items} run | run items/s | worker µs CPU/item | load 1 min |\n|---|---|---|---|---|---|---|---|---|---|---|\n`,
  );
  for (const r of rows) {
    process.stdout.write(
      `| ${r.variant} | ${f(r.apiStart)} | ${f(r.apiWarm)} | ${f(r.apiUpload)} | ${f(r.uploadItemsPerS)} | ${f(r.workerStart)} | ${f(r.workerWarm)} | ${f(r.workerRun)} | ${f(r.runItemsPerS)} | ${r.workerCpuUsPerItem ? r.workerCpuUsPerItem.toFixed(1) : '–'} | ${r.load} |\n`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
