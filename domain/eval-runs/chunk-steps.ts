/**
 * The steps every way of scoring a chunk shares: what it runs on, the run
 * watch that stops it when the run ends, ending the run, the side effects of
 * the statement that completed it, and the shape of an item's error result.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Deps, Logger } from '../shared/deps.ts';
import type { EvaluatorCache } from '../evaluators/evaluator-cache.ts';
import type { EvalResult } from '../evaluators/types.ts';
import type { JudgeOutcome } from '../evaluators/llm-judge/llm-judge.runtime.ts';
import { runProgress } from './eval-run.repository.ts';
import type { LocalChunks } from './local-chunks.ts';
import { onRunFinished } from './run-events.ts';
import { failRun, type ItemResult, type RecordOutcome } from './run-lifecycle.ts';

/** An item's stored reason or error is cut to this many characters (with an ellipsis). */
export const MAX_TEXT = 4_000;
/** How quickly a canceled run stops an in-flight chunk from starting new provider requests. */
export const RUN_WATCH_MS = 500;

/** What scoring a chunk uses: the domain's dependencies, the job's logger, the process's evaluators and chunks. */
export interface ChunkScoringDeps {
  container: Deps;
  log: Logger;
  evaluators: EvaluatorCache;
  /** This process's own bookkeeping of the chunks it holds. */
  chunks: LocalChunks;
}

export interface ChunkOutcome {
  scored: number;
  /** Why nothing (more) was scored, when that is the case. */
  skipped?: string;
}


export function usageOf(o: JudgeOutcome): Pick<ItemResult, 'attempts' | 'prompt_tokens' | 'completion_tokens' | 'cost_usd'> {
  return { attempts: o.attempts, prompt_tokens: o.usage.prompt_tokens, completion_tokens: o.usage.completion_tokens, cost_usd: o.cost_usd };
}

/** The error_message of a run ended by its budget. */
export const BUDGET_EXCEEDED = 'budget exceeded';

export interface RunWatchHooks {
  /** Hears the run's recorded cost at each poll (the budget check of generating runs). */
  onCost?: (costUsd: number | null) => void;
  /**
   * The run was ended by its budget (by another chunk): instead of aborting,
   * this is called, so that calls in flight land and are counted while no new
   * one starts.
   */
  onBudgetEnded?: () => void;
}

/** Polls the run's status; its signal aborts as soon as the run is no longer running (canceled, failed). */
export function watchRun(chunks: LocalChunks, em: EntityManager, runId: string, hooks: RunWatchHooks = {}) {
  const controller = new AbortController();
  const stopWatching = chunks.judging(runId, controller);
  const timer = setInterval(() => {
    runProgress(em, runId).then(
      (run) => {
        if (run?.status === 'running') hooks.onCost?.(run.cost_usd === null ? null : Number(run.cost_usd));
        else if (run?.error_message === BUDGET_EXCEEDED && hooks.onBudgetEnded) hooks.onBudgetEnded();
        else controller.abort(new Error(`run is ${run?.status ?? 'gone'}`));
      },
      () => undefined, // a missed poll is retried on the next tick
    );
  }, RUN_WATCH_MS);
  return {
    signal: controller.signal,
    abort: (reason: unknown) => controller.abort(reason),
    stop: () => {
      clearInterval(timer);
      stopWatching();
    },
  };
}

export async function endRun(deps: ChunkScoringDeps, em: EntityManager, runId: string, message: string): Promise<void> {
  if (await failRun(em, runId, message)) {
    deps.log.warn({ runId, err: message }, 'run failed');
    await onRunFinished(deps.container, runId);
  }
}

export async function afterRecord(deps: ChunkScoringDeps, runId: string, out: RecordOutcome | null): Promise<void> {
  if (out?.just_completed) {
    deps.log.info({ runId, items: out.item_count }, 'run completed');
    await onRunFinished(deps.container, runId);
  }
}

/** An evaluator's verdict as the item's result; a score outside [0, 1] (or not a number) is the item's error. */
export function scoredResult(itemId: string, r: EvalResult, latency: number): ItemResult {
  if (typeof r.score !== 'number' || !Number.isFinite(r.score) || r.score < 0 || r.score > 1) {
    return errorResult(itemId, new Error(`evaluator returned an invalid score (${String(r.score)}); scores must be in [0, 1]`), latency);
  }
  return { item_id: itemId, status: r.passed ? 'passed' : 'failed', score: r.score, passed: r.passed, reason: truncate(r.reason), error: null, latency_ms: latency };
}

export function errorResult(itemId: string, err: unknown, latency: number): ItemResult {
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

export function truncate(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}
