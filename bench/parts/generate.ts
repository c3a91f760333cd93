/**
 * Part 6: runs with a chat_completion target against the fake provider
 * (test/helpers/fake-llm.ts answers a generation request with its prompt
 * upper-cased, after 100 ms), configured at concurrency 64:
 *  - generate + exact_match: one call per item, ideal 64 / 0.1 s = 640 items/s;
 *  - generate + llm_judge on the same provider: two calls per item on one
 *    budget of 64, ideal 320 items/s.
 * Every round checks that every item completed with a result, that the fake
 * saw exactly one generation (and one judging) per item, and that no more
 * than 64 requests were ever in flight at it.
 */
import { targetSchema } from '../../domain/targets/index.ts';
import { enqueueRunStart, insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import type { NewItem } from '../../domain/datasets/dataset.service.ts';
import { makeDataset, makeEval, makeTenant } from '../../test/helpers/factories.ts';
import { JUDGE_CONCURRENCY, JUDGE_LATENCY_MS, JUDGE_PROVIDER, type Bench } from '../lib/context.ts';
import { measureRun, waitForWorkers, type RunMeasurement, type Scheduler } from '../lib/fixtures.ts';
import { peakRssMb, type Proc } from '../lib/procs.ts';
import { JUDGE_WORKER_ENV } from './judge.ts';

/** The judge part's worker settings (4 chunk jobs × 32 items in flight ≥ 64); `--gen-env=K=V,…` overrides them. */
export const GENERATE_WORKER_ENV: Record<string, string> = { ...JUDGE_WORKER_ENV };

export type GenerateVariant = 'exact_match' | 'llm_judge';

export interface GenerateRound extends RunMeasurement {
  maxInFlight: number;
  requests: number;
  generations: number;
  judgings: number;
  /** first request's arrival at the provider → last answer: the share of the run's total time the provider was being called */
  callWindowMs: number;
  /** requests × latency / (concurrency × callWindowMs): how full the 64 slots were while calls ran */
  slotUse: number;
}

export interface GenerateResult {
  variant: GenerateVariant;
  items: number;
  /** provider calls per item (1: generate; 2: generate and judge) */
  callsPerItem: number;
  idealPerS: number;
  rounds: GenerateRound[];
}

export interface GenerateResults {
  variants: GenerateResult[];
  workerEnv: Record<string, string>;
  workerPeakRssMb: number;
}

/** Item i: input { question: "q<i>" }; nine in ten expect what the fake generates ("Q<i>"). */
function genItem(i: number): NewItem {
  return { input: { question: `q${i}` }, expected_output: i % 10 === 0 ? `nope${i}` : `Q${i}`, metadata: { i } };
}

const TARGET = targetSchema.parse({
  type: 'chat_completion',
  provider: JUDGE_PROVIDER,
  model: 'bench-gen',
  messages: [{ role: 'user', content: '{{input.question}}' }],
}) as unknown as Record<string, unknown>;

/** Schedules in this process with the service functions, with the target and cache: false (what POST …/runs with that body stores). */
function targetScheduler(b: Bench, tenantId: string, datasetId: string, evalVersionId: string): Scheduler {
  return async () => {
    const c = b.stack.container;
    const run = await insertPendingRun(c.orm.em.fork(), tenantId, datasetId, evalVersionId, undefined, undefined, { target: TARGET, cache: false });
    await enqueueRunStart(c, run.id);
    return run.id;
  };
}

/** Requests in flight at the provider, sampled every 100 ms (each lasts JUDGE_LATENCY_MS from its arrival). */
function timeline(ats: number[]): string {
  const t0 = Math.min(...ats);
  const end = Math.max(...ats) + JUDGE_LATENCY_MS;
  const out: number[] = [];
  for (let t = t0 + 50; t < end; t += 100) out.push(ats.filter((a) => a <= t && t < a + JUDGE_LATENCY_MS).length);
  return out.join(' ');
}

export async function benchGenerate(b: Bench, n: number, warmN: number): Promise<GenerateResults> {
  const c = b.stack.container;
  const t = await makeTenant(c, 'bench-generate');
  const data = Array.from({ length: n }, (_, i) => genItem(i));
  const ds = await makeDataset(c, t.id, data);
  const warm = await makeDataset(c, t.id, data.slice(0, warmN));
  const evals: Record<GenerateVariant, string> = {
    exact_match: (await makeEval(c, t.id, { type: 'exact_match' })).evalVersionId,
    llm_judge: (
      await makeEval(c, t.id, {
        type: 'llm_judge',
        provider: JUDGE_PROVIDER,
        model: 'bench-judge',
        messages: [
          { role: 'system', content: 'Grade the answer. Reply as JSON.' },
          { role: 'user', content: 'OUTPUT: {{output}}\nEXPECTED: {{expected_output}}' },
        ],
        output: { kind: 'boolean' },
      })
    ).evalVersionId,
  };
  const workerEnv = { ...GENERATE_WORKER_ENV, ...b.opts.genEnv };
  const procs: Proc[] = [];
  try {
    const worker = b.startWorker('worker-generate', workerEnv);
    procs.push(worker);
    await waitForWorkers(b, 1, procs);
    const variants: GenerateResult[] = [];
    for (const variant of ['exact_match', 'llm_judge'] as const) {
      const callsPerItem = variant === 'llm_judge' ? 2 : 1;
      const timeoutMs = Math.max(120_000, n * 20 * callsPerItem);
      await measureRun(b, targetScheduler(b, t.id, warm.datasetId, evals[variant]), procs, timeoutMs);
      const rounds: GenerateRound[] = [];
      for (let r = 0; r < b.opts.rounds; r++) {
        b.fake.reset({ latencyMs: JUDGE_LATENCY_MS });
        const m = await measureRun(b, targetScheduler(b, t.id, ds.datasetId, evals[variant]), procs, timeoutMs);
        const s = b.fake.stats;
        const generations = s.log.filter((e) => e.kind === 'generate').length;
        const judgings = s.log.filter((e) => e.kind === 'judge').length;
        if (m.errors > 0) throw new Error(`generate (${variant}) run had ${m.errors} error items`);
        if (m.items !== n || m.passed + m.failed !== n) throw new Error(`generate (${variant}) run completed ${m.passed + m.failed} of ${n} items (${m.items} in the run)`);
        if (generations !== n || judgings !== (variant === 'llm_judge' ? n : 0)) {
          throw new Error(`generate (${variant}): the provider saw ${generations} generations and ${judgings} judgings for ${n} items`);
        }
        if (s.maxInFlight > JUDGE_CONCURRENCY) throw new Error(`generate (${variant}): ${s.maxInFlight} requests in flight at the provider, more than its concurrency ${JUDGE_CONCURRENCY}`);
        const ats = s.log.map((e) => e.at);
        const callWindowMs = Math.max(...ats) + JUDGE_LATENCY_MS - Math.min(...ats);
        const slotUse = (s.requests * JUDGE_LATENCY_MS) / (JUDGE_CONCURRENCY * callWindowMs);
        if (process.env.BENCH_GEN_TIMELINE) b.log(`in flight per 100 ms: ${timeline(ats)}`);
        rounds.push({ ...m, maxInFlight: s.maxInFlight, requests: s.requests, generations, judgings, callWindowMs, slotUse });
        b.log(`generate + ${variant} ${n} items round ${r + 1}: ${m.itemsPerS.toFixed(0)} items/s, max in flight ${s.maxInFlight}, ${s.requests} requests`);
      }
      variants.push({ variant, items: n, callsPerItem, idealPerS: JUDGE_CONCURRENCY / (JUDGE_LATENCY_MS / 1000) / callsPerItem, rounds });
    }
    return { variants, workerEnv, workerPeakRssMb: peakRssMb(worker.pid) };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}
