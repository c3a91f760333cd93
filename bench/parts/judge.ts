/**
 * Part 4: llm_judge against the fake OpenAI-compatible provider
 * (test/helpers/fake-llm.ts) answering after 100 ms, configured at
 * concurrency 64: the ideal is 64 / 0.1 s = 640 items/s.
 */
import { items as makeItems, makeDataset, makeEval, makeTenant } from '../../test/helpers/factories.ts';
import { JUDGE_CONCURRENCY, JUDGE_LATENCY_MS, JUDGE_PROVIDER, type Bench } from '../lib/context.ts';
import { measureRun, serviceScheduler, waitForWorkers, type RunMeasurement } from '../lib/fixtures.ts';
import { peakRssMb, type Proc } from '../lib/procs.ts';

/** Worker settings that let 64 requests be in flight: 4 chunk jobs × 32 items each = 128 ≥ 64 (the provider limit caps it). */
export const JUDGE_WORKER_ENV = { WORKER_CONCURRENCY: '4', JUDGE_CHUNK_PARALLELISM: '32', JUDGE_CHUNK_SIZE: '50' };

export interface JudgeRound extends RunMeasurement {
  maxInFlight: number;
  requests: number;
}

export interface JudgeResult {
  items: number;
  idealPerS: number;
  rounds: JudgeRound[];
  workerPeakRssMb: number;
}

export async function benchJudge(b: Bench, n: number, warmN: number): Promise<JudgeResult> {
  const c = b.stack.container;
  const t = await makeTenant(c, 'bench-judge');
  const data = makeItems(n, (i) => i % 10 !== 0);
  const ds = await makeDataset(c, t.id, data);
  const warm = await makeDataset(c, t.id, data.slice(0, warmN));
  const ev = await makeEval(c, t.id, {
    type: 'llm_judge',
    provider: JUDGE_PROVIDER,
    model: 'bench-judge',
    messages: [
      { role: 'system', content: 'Grade the answer. Reply as JSON.' },
      { role: 'user', content: 'OUTPUT: {{output}}\nEXPECTED: {{expected_output}}' },
    ],
    output: { kind: 'boolean' },
  });
  const procs: Proc[] = [];
  try {
    // smoke mode reuses a worker of the scale part (same settings: JUDGE_WORKER_ENV are the defaults)
    const custom = Object.keys(b.opts.judgeEnv).length > 0;
    const worker = (custom ? undefined : b.sharedWorkers.pop()) ?? b.startWorker('worker-judge', { ...JUDGE_WORKER_ENV, ...b.opts.judgeEnv });
    procs.push(worker);
    await waitForWorkers(b, 1, procs);
    const timeoutMs = Math.max(120_000, n * 20);
    await measureRun(b, serviceScheduler(b, t.id, warm.datasetId, ev.evalVersionId), procs, timeoutMs);
    const rounds: JudgeRound[] = [];
    for (let r = 0; r < b.opts.rounds; r++) {
      b.fake.reset({ latencyMs: JUDGE_LATENCY_MS });
      const m = await measureRun(b, serviceScheduler(b, t.id, ds.datasetId, ev.evalVersionId), procs, timeoutMs);
      if (m.errors > 0) throw new Error(`judge run had ${m.errors} error items`);
      rounds.push({ ...m, maxInFlight: b.fake.stats.maxInFlight, requests: b.fake.stats.requests });
      b.log(`judge ${n} items round ${r + 1}: ${m.itemsPerS.toFixed(0)} items/s, max in flight ${b.fake.stats.maxInFlight}`);
    }
    return { items: n, idealPerS: JUDGE_CONCURRENCY / (JUDGE_LATENCY_MS / 1000), rounds, workerPeakRssMb: peakRssMb(worker.pid) };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}
