/**
 * Export RSS probe (issue #17): seeds two completed runs of --items results
 * (generate_series, test/helpers/seed-run.ts), starts `main.ts api` as
 * `npm run start:api` does, streams the JSONL and CSV exports and the compare
 * export to nowhere through a reading client while sampling the API's VmRSS
 * every 100 ms, and prints a table against the 256 MB target.
 *
 *   node --import tsx bench/probe-export.ts [--items=1000000]
 */
import { parseArgs } from 'node:util';
import { makeEval, makeTenant } from '../test/helpers/factories.ts';
import { seedCompletedRun, seedDataset } from '../test/helpers/seed-run.ts';
import { openBench } from './lib/context.ts';
import { rssMb, sleep } from './lib/procs.ts';

const { values } = parseArgs({ options: { items: { type: 'string', default: '1000000' } } });
const items = Number(values.items);

async function main(): Promise<void> {
  const b = await openBench({ smoke: false, full: false, rounds: 1, only: null, judgeEnv: {}, genEnv: {} });
  try {
    const c = b.stack.container;
    const t = await makeTenant(c, 'probe-export');
    const ev = await makeEval(c, t.id);
    const t0 = performance.now();
    const ds = await seedDataset(c, t.id, items);
    const base = await seedCompletedRun(c, t.id, ds, ev.evalVersionId, 10);
    const head = await seedCompletedRun(c, t.id, ds, ev.evalVersionId, 7);
    await b.pg.query('vacuum analyze dataset_items, eval_run_items, eval_runs');
    b.log(`seeded ${items} items and 2 runs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const api = await b.startApi('api');
    await sleep(1_000);
    const baseline = rssMb(api.proc.pid);
    const rows: string[] = [];
    for (const [what, path] of [
      ['items jsonl', `/v1/eval-runs/${base}/items/export?format=jsonl`],
      ['items csv', `/v1/eval-runs/${base}/items/export?format=csv`],
      ['compare jsonl', `/v1/eval-runs/compare/export?base=${base}&head=${head}&format=jsonl`],
      ['compare csv', `/v1/eval-runs/compare/export?base=${base}&head=${head}&format=csv`],
    ] as const) {
      let peak = rssMb(api.proc.pid);
      const timer = setInterval(() => (peak = Math.max(peak, rssMb(api.proc.pid))), 100);
      const s0 = performance.now();
      const res = await fetch(`${api.base}${path}`, { headers: { authorization: `Bearer ${t.keys.viewer}` } });
      let bytes = 0;
      let newlines = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        for (const x of chunk) if (x === 10) newlines++;
      }
      const secs = (performance.now() - s0) / 1000;
      clearInterval(timer);
      peak = Math.max(peak, rssMb(api.proc.pid));
      const n = what.endsWith('csv') ? newlines - 1 : newlines;
      rows.push(`| ${what} | ${res.status} | ${n} | ${(bytes / 1048576).toFixed(0)} MiB | ${secs.toFixed(1)} | ${(n / secs).toFixed(0)} | ${peak.toFixed(0)} | ${baseline.toFixed(0)} | ${peak <= 256 ? 'pass' : 'FAIL'} |`);
      b.log(rows[rows.length - 1] as string);
    }
    await api.proc.stop();
    process.stdout.write(`\n| export | status | rows | bytes | seconds | rows/s | peak RSS MB | baseline RSS MB | ≤ 256 MB |\n|---|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`);
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
