/**
 * Scoring one chunk of a run: take it (counting the start, so a chunk that
 * kills its worker is found out), skip the items that already have a result,
 * score the rest and record results, counters and chunk completion in one
 * statement. Deterministic evaluators score the whole chunk and record once;
 * a run that calls a provider per item (an LLM judge, a target) goes item by
 * item through generate-chunk.ts, which records every second, so a crash
 * loses little paid-for work and progress stays visible.
 */
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import { crashNow } from '../shared/faults.ts';
import type { EvalItem, EvalResult } from '../evaluators/index.ts';
import { EvaluatorConfigError, type Scorer } from '../evaluators/evaluator-cache.ts';
import { afterRecord, endRun, errorResult, scoredResult, type ChunkOutcome, type ChunkScoringDeps } from './chunk-steps.ts';
import { scoreCriteria } from './criteria-scoring.ts';
import { combineRepetitions } from './repetitions.ts';
import { generateChunk, generates } from './generate-chunk.ts';
import type { ChunkGate } from './local-chunks.ts';

export { LocalChunks } from './local-chunks.ts';
export type { ChunkOutcome, ChunkScoringDeps } from './chunk-steps.ts';
import {
  beginChunk,
  chunkCrashes,
  endChunk,
  failChunk,
  loadChunkWork,
  recordResults,
  type ItemResult,
  type ItemToScore,
} from './run-lifecycle.ts';

/** The job's delivery of one chunk: `attempts` counts this one (BullMQ's attemptsMade + 1). */
export interface ChunkDelivery {
  runId: string;
  chunkIndex: number;
  attempts: number;
}

/** Give the event loop a turn (lock renewal, other jobs) after this much synchronous scoring. */
const SLICE_MS = 20;

/**
 * Scores the chunk's items that have no result yet. Throws what a retry may
 * fix (Postgres, Redis); what it cannot (a broken evaluator config, refused
 * provider credentials) ends the run instead.
 */
export async function scoreChunk(deps: ChunkScoringDeps, { runId: run_id, chunkIndex: chunk_index, attempts }: ChunkDelivery): Promise<ChunkOutcome> {
  const em = deps.container.orm.em.fork();
  await deps.chunks.endStartsLeftOpen(em);
  const { begun, leave } = await takeChunk(deps.chunks.gate, em, run_id, chunk_index);
  try {
    if (begun) {
      const max = deps.container.env.CHUNK_MAX_CRASHES;
      if (begun.crashes >= max) return await giveUpOnChunk(deps, em, run_id, chunk_index, begun.crashes, attempts);
      if (deps.container.faults.crashOnChunk === chunk_index) crashNow();
    }
    try {
      return await scoreTakenChunk(deps, em, run_id, chunk_index, attempts);
    } finally {
      if (begun) await endStart(deps, em, run_id, chunk_index);
    }
  } finally {
    leave();
  }
}

/**
 * Counts this start in Postgres (beginChunk) before anything that could kill
 * this process: a start never ended is a crash. A process that dies kills every
 * chunk it holds, so each of them would be counted; to blame the chunk that
 * did it, a chunk that has crashed a worker before runs alone in this process:
 * it waits until the chunks in flight here have ended, and chunks taken
 * meanwhile wait before counting their start. A bystander of a crash is thus
 * counted once at most, and the poison chunk alone reaches CHUNK_MAX_CRASHES.
 */
async function takeChunk(gate: ChunkGate, em: EntityManager, runId: string, chunkIndex: number): Promise<{ begun: { crashes: number } | null; leave: () => void }> {
  const leaveShared = await gate.enter();
  try {
    const begun = await beginChunk(em, runId, chunkIndex, { onlyIfClean: true });
    // null: done, run not running (the normal path says which), or a chunk with crashes
    if (begun || (await chunkCrashes(em, runId, chunkIndex)) === null) return { begun, leave: leaveShared };
  } catch (err) {
    leaveShared();
    throw err;
  }
  leaveShared();
  const leaveAlone = await gate.enterAlone();
  try {
    return { begun: await beginChunk(em, runId, chunkIndex), leave: leaveAlone };
  } catch (err) {
    leaveAlone();
    throw err;
  }
}

async function endStart(deps: ChunkScoringDeps, em: EntityManager, runId: string, chunkIndex: number): Promise<void> {
  try {
    await endChunk(em, runId, chunkIndex);
  } catch (err) {
    deps.log.warn({ runId, chunkIndex, err: (err as Error).message }, 'could not end the chunk start; will at the next chunk');
    deps.chunks.leftOpen(runId, chunkIndex);
  }
}

/** The chunk killed its worker `crashes` times: its unscored items become `error` with that reason, and the run goes on. */
async function giveUpOnChunk(
  deps: ChunkScoringDeps,
  em: EntityManager,
  runId: string,
  chunkIndex: number,
  crashes: number,
  attempts: number,
): Promise<{ scored: number; skipped: string }> {
  const reason = `chunk crashed its worker ${crashes} times`;
  const out = await failChunk(em, runId, chunkIndex, attempts, reason);
  deps.log.error({ runId, chunkIndex, crashes, items: out?.inserted ?? 0 }, 'chunk keeps crashing its worker; its items are recorded as errors');
  await afterRecord(deps, runId, out);
  return { scored: out?.inserted ?? 0, skipped: reason };
}

async function scoreTakenChunk(deps: ChunkScoringDeps, em: EntityManager, run_id: string, chunk_index: number, attempts: number): Promise<ChunkOutcome> {
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

  // item by item under the provider's limits: runs that call a provider (judge, target) or re-score or have a budget
  if (scorer.kind === 'judge' || (scorer.kind === 'criteria' && scorer.judges) || generates(chunk)) {
    return generateChunk(deps, em, chunk, chunk_index, attempts, scorer, items);
  }

  const once = scorer.kind === 'criteria' ? (item: ItemToScore, t0: number) => scoreCriteria(scorer, item.id, item, t0) : singleScore(scorer.evaluate);
  const results = scoreAll(items, chunk.repetitions === 1 ? once : repeated(once, chunk.repetitions, chunk.repetition_min_passed ?? chunk.repetitions));
  const { faults } = deps.container;
  if (faults.chunkDelayMs > 0) await sleep(faults.chunkDelayMs);
  if (faults.crashBeforeRecord) crashNow();
  const out = await recordResults(em, chunk, chunk_index, attempts, await results, true);
  deps.container.metrics.recordScored(await results, out?.inserted ?? 0);
  await afterRecord(deps, run_id, out);
  return { scored: out?.inserted ?? 0 };
}

/** One evaluator's verdict as the item's result; what it throws is the item's error. */
function singleScore(evaluate: (item: EvalItem) => EvalResult | Promise<EvalResult>) {
  return async (item: ItemToScore, t0: number): Promise<ItemResult> => {
    try {
      return scoredResult(item.id, await evaluate(item), performance.now() - t0);
    } catch (err) {
      return errorResult(item.id, err, performance.now() - t0);
    }
  };
}

/** Scores the item `n` times (a deterministic evaluator gives the same outcome each time: its spread is 0) and folds the outcomes. */
function repeated(once: (item: ItemToScore, t0: number) => Promise<ItemResult>, n: number, minPassed: number) {
  return async (item: ItemToScore, t0: number): Promise<ItemResult> => {
    const outcomes: ItemResult[] = [];
    for (let r = 0; r < n; r++) outcomes.push(await once(item, performance.now()));
    return { ...combineRepetitions(item.id, outcomes, minPassed), latency_ms: performance.now() - t0 };
  };
}

async function scoreAll(items: ItemToScore[], score: (item: ItemToScore, t0: number) => Promise<ItemResult>): Promise<ItemResult[]> {
  const results: ItemResult[] = [];
  let sliceStart = performance.now();
  for (const item of items) {
    results.push(await score(item, performance.now()));
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  return results;
}


