/**
 * Scoring a chunk item by item, concurrently under the provider's shared
 * limits: every run whose evaluator is an LLM judge, and every run that
 * produces its outputs. For the latter a target generates
 * each item's sample (or the tenant's cache, or another run's samples for a
 * re-score, supplies it), then the eval version scores it exactly as it
 * scores a stored output. Items run concurrently under the provider's shared
 * limits; results and their samples are recorded together every second, so
 * an item has its sample exactly when it has its result.
 *
 * Exactly once, and never more calls than attempts: every provider call is
 * counted in Postgres before it is sent (claimAttempts, group-committed), a
 * redelivered chunk continues from those counts, and a sample already done
 * (a retried run whose judge failed) is scored again without a call.
 * Budget: once the run's recorded cost (plus what this chunk has spent and
 * not yet recorded) reaches max_cost_usd, no new call starts; calls in
 * flight land and are recorded; the run ends failed "budget exceeded".
 */
import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import pLimit from 'p-limit';
import type { Scorer } from '../evaluators/evaluator-cache.ts';
import { ProviderAuthError, type JudgeOutcome, type LlmJudge } from '../evaluators/llm-judge/llm-judge.runtime.ts';
import type { EvalItem } from '../evaluators/types.ts';
import { compileTarget, ItemRequestError, TargetAuthError, TargetConfigError, targetSchema, type GenerateOutcome, type Generator } from '../targets/index.ts';
import type { PreparedRequest } from '../targets/generation.ts';
import { afterRecord, BUDGET_EXCEEDED, endRun, errorResult, scoredResult, truncate, usageOf, watchRun, type ChunkOutcome, type ChunkScoringDeps } from './chunk-steps.ts';
import { scoreCriteria } from './criteria-scoring.ts';
import { cachedSamples, claimAttempts, samplesOf, unitKey, type SampleRecord, type StoredSample } from './eval-run.repository.ts';
import { combineRepetitions } from './repetitions.ts';
import { NO_SPEND, recordResults, type ChunkContext, type ItemResult, type ItemToScore, type Spend } from './run-lifecycle.ts';

const FLUSH_MS = 1_000;
const FLUSH_ITEMS = 25;
/**
 * A run with a budget records after every item (the flushes chain, so they
 * batch whatever landed meanwhile): each record answers the run's total cost,
 * so every chunk learns what the others spent at its own pace, not at the
 * watch's.
 */
const BUDGET_FLUSH_ITEMS = 1;
/** The version of the cache key's recipe: bump it when what identifies a sample changes. */
const CACHE_KEY_VERSION = 1;

/** Whether a chunk of this run needs generateChunk whatever its evaluator: it has a target, re-scores a run, or has a budget. */
export function generates(c: Pick<ChunkContext, 'target' | 'outputs_from_run_id' | 'max_cost_usd'>): boolean {
  const type = (c.target as { type?: unknown } | null)?.type;
  return c.outputs_from_run_id !== null || (c.target !== null && type !== 'dataset_output') || c.max_cost_usd !== null;
}

/** The run's recorded cost reached its budget: no new provider call may start. */
export class BudgetExceeded extends Error {
  override name = 'BudgetExceeded';
  constructor() {
    super(BUDGET_EXCEEDED);
  }
}

/** JSON with object keys sorted, so equal requests hash equally whatever order their keys were written in. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** The sample cache's key: the target by name and the rendered request (cacheMaterial), and the repetition. */
export function cacheKey(material: unknown, repetition: number): string {
  return createHash('sha256').update(canonical({ v: CACHE_KEY_VERSION, material, repetition })).digest('hex');
}

/**
 * Counts calls in Postgres before they are sent, batching the claims that
 * arrive while one statement is in flight (group commit): one statement per
 * round trip whatever the concurrency.
 */
class AttemptJournal {
  private queue: { itemId: string; repetition: number; resolve: (n: number | null) => void; reject: (err: unknown) => void }[] = [];
  private busy = false;

  constructor(
    private readonly em: EntityManager,
    private readonly runId: string,
    private readonly tenantId: string,
  ) {}

  claim(itemId: string, repetition: number): Promise<number | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ itemId, repetition, resolve, reject });
      if (!this.busy) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.busy = true;
    while (this.queue.length > 0) {
      // one claim per sample (item, repetition) per statement (ON CONFLICT may touch a row once)
      const seen = new Set<string>();
      const batch: typeof this.queue = [];
      const rest: typeof this.queue = [];
      for (const w of this.queue) {
        const key = unitKey(w.itemId, w.repetition);
        if (seen.has(key)) rest.push(w);
        else {
          seen.add(key);
          batch.push(w);
        }
      }
      this.queue = rest;
      try {
        const claimed = await claimAttempts(this.em, this.runId, this.tenantId, batch.map((w) => ({ itemId: w.itemId, repetition: w.repetition })));
        for (const w of batch) w.resolve(claimed.get(unitKey(w.itemId, w.repetition)) ?? null);
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.busy = false;
  }
}

const NO_USAGE = { prompt_tokens: 0, completion_tokens: 0 };

function errorSample(itemId: string, error: string, attempts = 0): SampleRecord {
  return {
    item_id: itemId,
    status: 'error',
    attempts,
    output_text: null,
    raw_start: null,
    finish_reason: null,
    ...NO_USAGE,
    cost_usd: null,
    latency_ms: 0,
    cached: false,
    error,
    cache_key: null,
  };
}

function fromOutcome(itemId: string, o: GenerateOutcome, key: string | null): SampleRecord {
  const common = {
    item_id: itemId,
    attempts: o.attempts,
    finish_reason: o.finish_reason,
    prompt_tokens: o.usage.prompt_tokens,
    completion_tokens: o.usage.completion_tokens,
    cost_usd: o.cost_usd,
    latency_ms: o.latency_ms,
    cache_key: key,
  };
  return o.kind === 'sample'
    ? { ...common, status: 'done', output_text: o.text, output: o.value, raw_start: null, cached: o.cached, error: null }
    : { ...common, status: 'error', output_text: null, raw_start: o.raw_start, cached: false, error: o.error };
}

/** A sample reused without a call (the cache, another generation of the same request, another run): it costs nothing here. */
function reused(itemId: string, s: { output_text: string | null; output?: unknown; finish_reason: string | null; latency_ms?: number | null }, cached: boolean): SampleRecord {
  return {
    item_id: itemId,
    status: 'done',
    attempts: 0,
    output_text: s.output_text,
    output: s.output,
    raw_start: null,
    finish_reason: s.finish_reason,
    ...NO_USAGE,
    cost_usd: cached ? 0 : null,
    latency_ms: s.latency_ms ?? 0,
    cached,
    error: null,
    cache_key: null,
  };
}

/** A sample recorded by an earlier delivery of this run (kept when the run was retried): scored again as it was. */
function storedAsRecord(s: StoredSample): SampleRecord {
  return {
    item_id: s.item_id,
    status: 'done',
    attempts: s.attempts,
    output_text: s.output_text,
    output: s.output,
    raw_start: s.raw_start,
    finish_reason: s.finish_reason,
    prompt_tokens: s.prompt_tokens ?? 0,
    completion_tokens: s.completion_tokens ?? 0,
    cost_usd: s.cost_usd,
    latency_ms: s.latency_ms ?? 0,
    cached: s.cached,
    error: null,
    cache_key: null,
  };
}

const byUnit = (rows: StoredSample[]) => new Map(rows.map((r) => [unitKey(r.item_id, r.repetition), r]));

function addSpend(a: Spend, usage: { prompt_tokens: number; completion_tokens: number }, cost: number | null): Spend {
  return {
    prompt_tokens: a.prompt_tokens + usage.prompt_tokens,
    completion_tokens: a.completion_tokens + usage.completion_tokens,
    cost_usd: cost === null ? a.cost_usd : (a.cost_usd ?? 0) + cost,
  };
}

export async function generateChunk(
  deps: ChunkScoringDeps,
  em: EntityManager,
  chunk: ChunkContext,
  chunkIndex: number,
  attempts: number,
  scorer: Scorer,
  items: ItemToScore[],
): Promise<ChunkOutcome> {
  const runId = chunk.run_id;
  const env = deps.container.env;

  let generator: Generator | null = null;
  if (chunk.outputs_from_run_id === null && chunk.target !== null) {
    const parsed = targetSchema.safeParse(chunk.target);
    try {
      if (!parsed.success) throw new TargetConfigError(`invalid target: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'target'}: ${i.message}`).join('; ')}`);
      generator = compileTarget(env, parsed.data, deps.evaluators.runtime);
    } catch (err) {
      if (!(err instanceof TargetConfigError)) throw err;
      await endRun(deps, em, runId, err.message);
      return { scored: 0, skipped: 'run failed' };
    }
  }
  const withSamples = generator !== null || chunk.outputs_from_run_id !== null;
  const ids = items.map((i) => i.id);
  const earlier = withSamples ? byUnit(await samplesOf(em, runId, ids)) : new Map<string, StoredSample>();
  const source = chunk.outputs_from_run_id !== null ? byUnit(await samplesOf(em, chunk.outputs_from_run_id, ids)) : null;
  const n = chunk.repetitions;
  const minPassed = chunk.repetition_min_passed ?? n;
  const reps = Array.from({ length: n }, (_, r) => r);

  // Every request is rendered first (an item that cannot be sent is its own error), then one cache lookup for the chunk.
  // One request per item, one cache key per repetition: a repetition is a real call of its own, not the cache's copy.
  const requests = new Map<string, { req: PreparedRequest; key: string } | { error: string }>();
  if (generator) {
    for (const item of items) {
      const todo = reps.filter((r) => earlier.get(unitKey(item.id, r))?.status !== 'done');
      if (todo.length === 0) continue;
      try {
        const req = generator.prepare(item);
        for (const r of todo) requests.set(unitKey(item.id, r), { req, key: cacheKey(req.cacheMaterial, r) });
      } catch (err) {
        if (!(err instanceof ItemRequestError)) throw err;
        for (const r of todo) requests.set(unitKey(item.id, r), { error: err.message });
      }
    }
  }
  const hits = new Map<string, { output_text: string; output: unknown; finish_reason: string | null }>();
  if (generator && chunk.use_cache) {
    const keys = new Set<string>();
    for (const r of requests.values()) if ('key' in r) keys.add(r.key);
    for (const h of await cachedSamples(em, chunk.tenant_id, [...keys])) hits.set(h.key, h);
  }

  // The budget: what Postgres last said the run cost, plus what this chunk spent and has not seen recorded yet.
  const maxCost = chunk.max_cost_usd === null ? null : Number(chunk.max_cost_usd);
  const flushItems = maxCost === null ? FLUSH_ITEMS : BUDGET_FLUSH_ITEMS;
  let recordedCost = chunk.run_cost_usd === null ? 0 : Number(chunk.run_cost_usd);
  let spentHere = 0;
  let recordedHere = 0;
  const budget = new AbortController();
  const checkBudget = () => {
    if (maxCost !== null && !budget.signal.aborted && recordedCost + (spentHere - recordedHere) >= maxCost) budget.abort(new BudgetExceeded());
  };
  const stopIfOverBudget = () => {
    checkBudget();
    if (budget.signal.aborted) throw budget.signal.reason as Error;
  };

  const watch = watchRun(deps.chunks, em, runId, {
    onCost: (cost) => {
      recordedCost = Math.max(recordedCost, cost ?? 0);
      checkBudget();
    },
    onBudgetEnded: () => {
      if (!budget.signal.aborted) budget.abort(new BudgetExceeded());
    },
  });
  const order = deps.chunks.nextJudgeOrder();
  const journal = new AttemptJournal(em, runId, chunk.tenant_id);

  let pending: ItemResult[] = [];
  let pendingSamples: SampleRecord[] = [];
  let spend: Spend = { ...NO_SPEND };
  let scored = 0;
  let finished = 0;
  let lastFlush = Date.now();
  let flushing: Promise<unknown> = Promise.resolve();
  const flush = (done: boolean) => {
    flushing = flushing.then(async () => {
      const batch = pending;
      const samples = pendingSamples;
      const cost = spend;
      pending = [];
      pendingSamples = [];
      spend = { ...NO_SPEND };
      lastFlush = Date.now();
      if (batch.length === 0 && cost.prompt_tokens === 0 && cost.completion_tokens === 0 && cost.cost_usd === null && !done) return;
      const out = await recordResults(em, chunk, chunkIndex, attempts, batch, done, cost, withSamples ? samples : undefined);
      recordedHere += cost.cost_usd ?? 0;
      if (out?.cost_usd !== null && out?.cost_usd !== undefined) recordedCost = Number(out.cost_usd);
      checkBudget();
      deps.container.metrics.recordScored(batch, out?.inserted ?? 0);
      scored += out?.inserted ?? 0;
      await afterRecord(deps, runId, out);
    });
    return flushing;
  };

  /** The sample of the item's repetition `rep`: reused, copied, cached, or generated now; null for a run over the stored outputs. */
  const sampleFor = async (item: ItemToScore, rep: number): Promise<SampleRecord | null> => {
    const unit = unitKey(item.id, rep);
    const prior = earlier.get(unit);
    if (prior?.status === 'done') return storedAsRecord(prior);
    if (source) {
      const src = source.get(unit);
      const which = n > 1 ? ` (repetition ${rep})` : '';
      if (src?.status !== 'done') return errorSample(item.id, `eval run ${chunk.outputs_from_run_id} has no sample for this item${which}${src?.error ? ` (${src.error})` : ''}`);
      return reused(item.id, src, false);
    }
    if (!generator) return null;
    const r = requests.get(unit)!;
    if ('error' in r) return errorSample(item.id, r.error);
    const hit = hits.get(r.key);
    if (hit) return reused(item.id, hit, true);
    const flightKey = `${chunk.tenant_id}:${r.key}`;
    if (chunk.use_cache) {
      const inflight = deps.chunks.generating.get(flightKey) as Promise<GenerateOutcome> | undefined;
      if (inflight) {
        const o = await inflight.catch(() => null);
        if (o?.kind === 'sample') return reused(item.id, { output_text: o.text, output: o.value, finish_reason: o.finish_reason }, true);
      }
    }
    stopIfOverBudget();
    const call = generator.generate(r.req, {
      signal: watch.signal,
      priority: order,
      claim: () => {
        stopIfOverBudget();
        return journal.claim(item.id, rep);
      },
      beforeCall: stopIfOverBudget,
    });
    if (chunk.use_cache) deps.chunks.generating.set(flightKey, call);
    try {
      const o = await call;
      spentHere += o.cost_usd ?? 0;
      spend = addSpend(spend, o.usage, o.cost_usd);
      return fromOutcome(item.id, o, r.key);
    } finally {
      if (deps.chunks.generating.get(flightKey) === call) deps.chunks.generating.delete(flightKey);
    }
  };

  /** The item's result for its sample (or its stored output). */
  const score = async (item: ItemToScore, sample: SampleRecord | null, t0: number): Promise<ItemResult> => {
    if (sample?.status === 'error') return { ...errorResult(item.id, new Error(sample.error ?? 'generation failed'), performance.now() - t0), attempts: sample.attempts };
    const evalItem: EvalItem = sample
      ? { input: item.input, output: sample.output ?? sample.output_text, expected_output: item.expected_output, metadata: item.metadata }
      : item;
    const judges = scorer.kind === 'judge' || (scorer.kind === 'criteria' && scorer.judges);
    if (judges && budget.signal.aborted) {
      // the sample is kept with this result: a retry of the run judges it without generating it again
      return errorResult(item.id, new Error('budget exceeded before this item was judged'), performance.now() - t0);
    }
    /** One judge call on this item, its spend counted against the chunk's budget. */
    const judged = async (judge: LlmJudge): Promise<JudgeOutcome> => {
      const o = await judge.judge(evalItem, watch.signal, order);
      spentHere += o.cost_usd ?? 0;
      spend = addSpend(spend, o.usage, o.cost_usd);
      return o;
    };
    if (scorer.kind === 'judge') {
      const o = await judged(scorer.judge);
      const latency = performance.now() - t0;
      return o.kind === 'scored'
        ? { item_id: item.id, status: o.passed ? 'passed' : 'failed', score: o.score, passed: o.passed, reason: truncate(o.reason), error: null, latency_ms: latency, ...usageOf(o) }
        : { ...errorResult(item.id, new Error(o.error), latency), ...usageOf(o) };
    }
    if (scorer.kind === 'criteria') return scoreCriteria(scorer, item.id, evalItem, t0, judged);
    try {
      const r = await scorer.evaluate(evalItem);
      return scoredResult(item.id, r, performance.now() - t0);
    } catch (err) {
      return errorResult(item.id, err, performance.now() - t0);
    }
  };

  checkBudget();
  let authError: Error | null = null;
  let failure: unknown = null;
  let recordFailed = false;
  try {
    await pLimit(env.JUDGE_CHUNK_PARALLELISM).map(items, async (item) => {
      if (watch.signal.aborted || budget.signal.aborted || failure || recordFailed || authError) return;
      const t0 = performance.now();
      let samples: (SampleRecord | null)[];
      let result: ItemResult;
      try {
        // the item's repetitions concurrently (each one a sample of its own); the item is recorded once, with all of them
        const outcomes = await Promise.all(
          reps.map(async (rep) => {
            const sample = await sampleFor(item, rep);
            return { sample: sample && { ...sample, repetition: rep }, result: await score(item, sample, t0) };
          }),
        );
        samples = outcomes.map((o) => o.sample);
        // with repetitions, the item's latency is the wall time of all of them
        result = n === 1 ? outcomes[0]!.result : { ...combineRepetitions(item.id, outcomes.map((o) => o.result), minPassed), latency_ms: performance.now() - t0 };
      } catch (err) {
        if (err instanceof TargetAuthError || err instanceof ProviderAuthError) {
          authError ??= err;
          deps.chunks.abortRun(runId, err); // every chunk of this run in this process stops now, before the run is marked failed
        } else if (!(err instanceof BudgetExceeded) && !watch.signal.aborted) {
          failure ??= err;
        }
        return;
      }
      pending.push(result);
      for (const sample of samples) if (sample) pendingSamples.push(sample);
      // the chunk's last result waits for the final flush, which also marks the chunk done (one statement, not two)
      if (++finished < items.length && (pending.length >= flushItems || Date.now() - lastFlush >= FLUSH_MS)) {
        await flush(false).catch((err: unknown) => {
          recordFailed = true; // the job fails with this error (and retries); no further item is sent to the provider
          throw err;
        });
      }
    });
  } finally {
    watch.stop();
  }

  const complete = finished === items.length;
  await flush(complete);
  if (authError) {
    await endRun(deps, em, runId, (authError as Error).message);
    return { scored, skipped: 'the target refused the credentials' };
  }
  if (budget.signal.aborted && !complete) {
    await endRun(deps, em, runId, BUDGET_EXCEEDED);
    return { scored, skipped: 'budget exceeded' };
  }
  if (failure) throw failure; // infrastructure (Redis, Postgres): the job retries; recorded results stay
  return complete ? { scored } : { scored, skipped: 'run is no longer running' };
}
