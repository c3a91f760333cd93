/**
 * `run chunk`: score the chunk's items that have no result yet and record
 * results, counters and chunk completion in one statement. Deterministic
 * evaluators score the whole chunk and record once; an LLM judge scores items
 * concurrently under the provider's shared limits and records every second,
 * so a crash loses little paid-for work and progress stays visible.
 */
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { crashNow } from '../../server/faults.ts';
import { sql } from '../../server/sql.ts';
import type { EvalItem, EvalResult } from '../evaluators/index.ts';
import { ProviderAuthError, type JudgeOutcome, type LlmJudge } from '../evaluators/llm-judge/llm-judge.runtime.ts';
import { parsePayload } from '../payload.ts';
import { runChunkPayload } from '../queues.ts';
import type { WorkerDeps } from '../registry.ts';
import { EvaluatorConfigError, type Scorer } from './evaluator-cache.ts';
import { onRunFinished } from './run-events.ts';
import {
  failRun,
  loadChunkWork,
  NO_SPEND,
  recordResults,
  type ChunkContext,
  type ItemResult,
  type ItemToScore,
  type RecordOutcome,
  type Spend,
} from './run-lifecycle.ts';

const MAX_TEXT = 4_000;
/** Give the event loop a turn (lock renewal, other jobs) after this much synchronous scoring. */
const SLICE_MS = 20;
/** An LLM-judged chunk records at least this often, and every this many results. */
const JUDGE_FLUSH_MS = 1_000;
const JUDGE_FLUSH_ITEMS = 25;
/** How quickly a canceled run stops an in-flight chunk from starting new provider requests. */
const RUN_WATCH_MS = 500;

export async function processRunChunk(deps: WorkerDeps, job: Job): Promise<{ scored: number; skipped?: string }> {
  const { run_id, chunk_index } = parsePayload(runChunkPayload, job.data);
  const em = deps.container.orm.em.fork();
  // the chunk, its run's state and its items still to score, in one round trip
  const work = await loadChunkWork(em, run_id, chunk_index);
  if (!work) return { scored: 0, skipped: 'no such chunk' };
  const { chunk, items } = work;
  if (chunk.done) return { scored: 0, skipped: 'chunk already done' };
  if (chunk.status !== 'running') return { scored: 0, skipped: `run is ${chunk.status}` };

  let scorer: Scorer;
  try {
    scorer = await deps.evaluators.get(em, chunk.eval_version_id);
  } catch (err) {
    if (err instanceof EvaluatorConfigError) {
      await endRun(deps, em, run_id, err.message);
      return { scored: 0, skipped: 'run failed' };
    }
    throw err;
  }

  const attempts = job.attemptsMade + 1;
  if (scorer.kind === 'judge') return judgeChunk(deps, em, chunk, chunk_index, attempts, scorer.judge, items);

  const results = scoreAll(items, scorer.evaluate);
  const { faults } = deps.container;
  if (faults.chunkDelayMs > 0) await sleep(faults.chunkDelayMs);
  if (faults.crashBeforeRecord) crashNow();
  const out = await recordResults(em, chunk, chunk_index, attempts, await results, true);
  deps.container.metrics.recordScored(await results, out?.inserted ?? 0);
  await afterRecord(deps, run_id, out);
  return { scored: out?.inserted ?? 0 };
}

async function scoreAll(items: ItemToScore[], evaluate: (item: EvalItem) => EvalResult | Promise<EvalResult>): Promise<ItemResult[]> {
  const results: ItemResult[] = [];
  let sliceStart = performance.now();
  for (const item of items) {
    const t0 = performance.now();
    try {
      const r = await evaluate(item);
      if (typeof r.score !== 'number' || !Number.isFinite(r.score) || r.score < 0 || r.score > 1) {
        throw new Error(`evaluator returned an invalid score (${String(r.score)}); scores must be in [0, 1]`);
      }
      results.push({
        item_id: item.id,
        status: r.passed ? 'passed' : 'failed',
        score: r.score,
        passed: r.passed,
        reason: truncate(r.reason),
        error: null,
        latency_ms: performance.now() - t0,
      });
    } catch (err) {
      results.push(errorResult(item.id, err, performance.now() - t0));
    }
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  return results;
}

/** Judged chunks started by this process, in order. */
let judgedChunks = 0;

async function judgeChunk(
  deps: WorkerDeps,
  em: EntityManager,
  chunk: ChunkContext,
  chunkIndex: number,
  attempts: number,
  judge: LlmJudge,
  items: ItemToScore[],
): Promise<{ scored: number; skipped?: string }> {
  const runId = chunk.run_id;
  const watch = watchRun(em, runId);
  const order = judgedChunks++; // the provider limiter serves older chunks first, so chunks finish one at a time
  let pending: ItemResult[] = [];
  let spend: Spend = { ...NO_SPEND };
  let scored = 0;
  let judged = 0;
  let lastFlush = Date.now();
  let flushing: Promise<unknown> = Promise.resolve();
  // Records serially: results so far plus what they cost; `done` marks the chunk complete.
  const flush = (done: boolean) => {
    flushing = flushing.then(async () => {
      const batch = pending;
      const cost = spend;
      pending = [];
      spend = { ...NO_SPEND };
      lastFlush = Date.now();
      if (batch.length === 0 && cost.prompt_tokens === 0 && cost.completion_tokens === 0 && !done) return;
      const out = await recordResults(em, chunk, chunkIndex, attempts, batch, done, cost);
      deps.container.metrics.recordScored(batch, out?.inserted ?? 0);
      scored += out?.inserted ?? 0;
      await afterRecord(deps, runId, out);
    });
    return flushing;
  };

  let authError: ProviderAuthError | null = null;
  let failure: unknown = null;
  try {
    await mapPool(items, deps.container.env.JUDGE_CHUNK_PARALLELISM, async (item) => {
      if (watch.signal.aborted || failure) return;
      const t0 = performance.now();
      let o: JudgeOutcome;
      try {
        o = await judge.judge(item, watch.signal, order);
      } catch (err) {
        if (err instanceof ProviderAuthError) {
          authError ??= err;
          abortRunHere(runId, err); // every chunk of this run in this process stops now, before the run is marked failed
        } else if (!watch.signal.aborted) {
          failure ??= err;
        }
        return;
      }
      spend = {
        prompt_tokens: spend.prompt_tokens + o.usage.prompt_tokens,
        completion_tokens: spend.completion_tokens + o.usage.completion_tokens,
        cost_usd: o.cost_usd === null ? spend.cost_usd : (spend.cost_usd ?? 0) + o.cost_usd,
      };
      const latency = performance.now() - t0;
      pending.push(
        o.kind === 'scored'
          ? { item_id: item.id, status: o.passed ? 'passed' : 'failed', score: o.score, passed: o.passed, reason: truncate(o.reason), error: null, latency_ms: latency, ...usageOf(o) }
          : { ...errorResult(item.id, new Error(o.error), latency), ...usageOf(o) },
      );
      // the chunk's last result waits for the final flush, which also marks the chunk done (one statement, not two)
      if (++judged < items.length && (pending.length >= JUDGE_FLUSH_ITEMS || Date.now() - lastFlush >= JUDGE_FLUSH_MS)) await flush(false);
    });
  } finally {
    watch.stop();
  }

  const complete = !watch.signal.aborted && !failure;
  await flush(complete);
  if (authError) {
    await endRun(deps, em, runId, (authError as ProviderAuthError).message);
    return { scored, skipped: 'provider refused the credentials' };
  }
  if (failure) throw failure; // infrastructure (Redis, Postgres): the job retries; recorded results stay
  return complete ? { scored } : { scored, skipped: 'run is no longer running' };
}

function usageOf(o: JudgeOutcome): Pick<ItemResult, 'attempts' | 'prompt_tokens' | 'completion_tokens' | 'cost_usd'> {
  return { attempts: o.attempts, prompt_tokens: o.usage.prompt_tokens, completion_tokens: o.usage.completion_tokens, cost_usd: o.cost_usd };
}

/** In-flight judged chunks of this process by run, so ending a run stops them at once (other processes poll). */
const activeRuns = new Map<string, Set<AbortController>>();

function abortRunHere(runId: string, reason: unknown): void {
  for (const c of activeRuns.get(runId) ?? []) c.abort(reason);
}

/** Polls the run's status; its signal aborts as soon as the run is no longer running (canceled, failed). */
function watchRun(em: EntityManager, runId: string) {
  const controller = new AbortController();
  const here = activeRuns.get(runId) ?? new Set<AbortController>();
  here.add(controller);
  activeRuns.set(runId, here);
  const timer = setInterval(() => {
    sql<{ status: string }>(em, 'select status from eval_runs where id = ?', [runId]).then(
      ([row]) => {
        if (row?.status !== 'running') controller.abort(new Error(`run is ${row?.status ?? 'gone'}`));
      },
      () => undefined, // a missed poll is retried on the next tick
    );
  }, RUN_WATCH_MS);
  return {
    signal: controller.signal,
    abort: (reason: unknown) => controller.abort(reason),
    stop: () => {
      clearInterval(timer);
      here.delete(controller);
      if (here.size === 0) activeRuns.delete(runId);
    },
  };
}

async function mapPool<T>(items: readonly T[], parallelism: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(parallelism, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}

async function endRun(deps: WorkerDeps, em: EntityManager, runId: string, message: string): Promise<void> {
  if (await failRun(em, runId, message)) {
    deps.log.warn({ runId, err: message }, 'run failed');
    await onRunFinished(deps.container, runId);
  }
}

async function afterRecord(deps: WorkerDeps, runId: string, out: RecordOutcome | null): Promise<void> {
  if (out?.just_completed) {
    deps.log.info({ runId, items: out.item_count }, 'run completed');
    await onRunFinished(deps.container, runId);
  }
}

function errorResult(itemId: string, err: unknown, latency: number): ItemResult {
  return {
    item_id: itemId,
    status: 'error',
    score: null,
    passed: null,
    reason: null,
    error: truncate(err instanceof Error ? err.message : String(err)) ?? 'evaluator failed',
    latency_ms: latency,
  };
}

function truncate(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}
