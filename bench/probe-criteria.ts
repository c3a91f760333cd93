/**
 * Criteria × repetitions throughput probe (issue #15): the same dataset of
 * --items items scored by one worker process, interleaved rounds of
 *   - single: one exact_match, one repetition (the baseline, same run), and
 *   - 3×3: three deterministic criteria (exact_match, contains, regex), three repetitions,
 * each scheduled over REST and timed from Postgres (created_at → completed_at).
 * The target: 3×3 reaches at least 50 % of single's items/s per scored sample.
 *
 *   node --import tsx bench/probe-criteria.ts [--items=100000] [--rounds=3]
 */
import { parseArgs } from 'node:util';
import { makeEval, makeTenant } from '../test/helpers/factories.ts';
import { seedDataset } from '../test/helpers/seed-run.ts';
import { openBench } from './lib/context.ts';
import { apiJson, measureRun, waitForWorkers, type Scheduler } from './lib/fixtures.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({ options: { items: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } } });
const items = Number(values.items);
const rounds = Number(values.rounds);

const CRITERIA = {
  criteria: [
    { name: 'exact', evaluator: { type: 'exact_match' } },
    { name: 'has', evaluator: { type: 'contains' } },
    { name: 'shape', evaluator: { type: 'regex', pattern: '^answer \\d+$' } },
  ],
};

async function main(): Promise<void> {
  const b = await openBench({ smoke: false, full: false, rounds, only: null, judgeEnv: {}, genEnv: {} });
  try {
    const c = b.stack.container;
    const t = await makeTenant(c, 'probe-criteria');
    const single = await makeEval(c, t.id, { type: 'exact_match' });
    const three = await makeEval(c, t.id, CRITERIA);
    const ds = await seedDataset(c, t.id, items, { failEvery: 4 });
    const warm = await seedDataset(c, t.id, 2_000, { failEvery: 4 });
    await b.pg.query('vacuum analyze dataset_items');
    const api = await b.startApi('api');
    const worker = b.startWorker('worker');
    await waitForWorkers(b, 1, [worker]);
    const scheduler = (datasetId: string, evalVersionId: string, repetitions: number): Scheduler => async () => {
      const r = await apiJson<{ id: string }>(api.base, t.keys.member, 'POST', `/v1/datasets/${datasetId}/runs`, { eval_version_id: evalVersionId, repetitions });
      if (r.status !== 202) throw new Error(`schedule answered ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body.id;
    };
    const timeoutMs = Math.max(180_000, items * 6);
    await measureRun(b, scheduler(warm, single.evalVersionId, 1), [worker], timeoutMs);
    await measureRun(b, scheduler(warm, three.evalVersionId, 3), [worker], timeoutMs);
    const perSample = { single: [] as number[], three: [] as number[] };
    const perItem = { single: [] as number[], three: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const a = await measureRun(b, scheduler(ds, single.evalVersionId, 1), [worker], timeoutMs);
      perItem.single.push(a.itemsPerS);
      perSample.single.push(a.itemsPerS);
      const m = await measureRun(b, scheduler(ds, three.evalVersionId, 3), [worker], timeoutMs);
      perItem.three.push(m.itemsPerS);
      perSample.three.push(m.itemsPerS * 3);
      b.log(`round ${r + 1}: single ${a.itemsPerS.toFixed(0)} items/s; 3 criteria x 3 repetitions ${m.itemsPerS.toFixed(0)} items/s = ${(m.itemsPerS * 3).toFixed(0)} samples/s`);
    }
    await worker.stop();
    await api.proc.stop();
    const ratio = median(perSample.three) / median(perSample.single);
    process.stdout.write(
      `\n| run (${items} items, 1 worker, median of ${rounds}) | items/s | scored samples/s | evaluations/s |\n|---|---|---|---|\n` +
        `| single: exact_match, 1 repetition | ${median(perItem.single).toFixed(0)} | ${median(perSample.single).toFixed(0)} | ${median(perSample.single).toFixed(0)} |\n` +
        `| 3 criteria x 3 repetitions | ${median(perItem.three).toFixed(0)} | ${median(perSample.three).toFixed(0)} | ${(median(perSample.three) * 3).toFixed(0)} |\n` +
        `\nsamples/s of 3x3 against single: ${(ratio * 100).toFixed(0)} % (target >= 50 %: ${ratio >= 0.5 ? 'pass' : 'FAIL'})\n`,
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
