/**
 * `run chunk`: score the chunk's items that have no result yet and record
 * results, counters and chunk completion in one statement.
 */
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Job } from 'bullmq';
import { crashNow } from '../../server/faults.ts';
import { parsePayload } from '../payload.ts';
import { runChunkPayload } from '../queues.ts';
import type { WorkerDeps } from '../registry.ts';
import { EvaluatorConfigError } from './evaluator-cache.ts';
import { onRunFinished } from './run-events.ts';
import { failRun, loadChunk, loadPendingItems, recordResults, type ItemResult } from './run-lifecycle.ts';

const MAX_TEXT = 4_000;
/** Give the event loop a turn (lock renewal, other jobs) after this much synchronous scoring. */
const SLICE_MS = 20;

export async function processRunChunk(deps: WorkerDeps, job: Job): Promise<{ scored: number; skipped?: string }> {
  const { run_id, chunk_index } = parsePayload(runChunkPayload, job.data);
  const em = deps.container.orm.em.fork();
  const chunk = await loadChunk(em, run_id, chunk_index);
  if (!chunk) return { scored: 0, skipped: 'no such chunk' };
  if (chunk.done) return { scored: 0, skipped: 'chunk already done' };
  if (chunk.status !== 'running') return { scored: 0, skipped: `run is ${chunk.status}` };

  let evaluate;
  try {
    evaluate = await deps.evaluators.get(em, chunk.eval_version_id);
  } catch (err) {
    if (err instanceof EvaluatorConfigError) {
      if (await failRun(em, run_id, err.message)) {
        deps.log.warn({ runId: run_id, err: err.message }, 'run failed: evaluator config');
        await onRunFinished(deps.container, run_id);
      }
      return { scored: 0, skipped: 'run failed' };
    }
    throw err;
  }

  const items = await loadPendingItems(em, chunk);
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
      results.push({
        item_id: item.id,
        status: 'error',
        score: null,
        passed: null,
        reason: null,
        error: truncate(err instanceof Error ? err.message : String(err)) ?? 'evaluator failed',
        latency_ms: performance.now() - t0,
      });
    }
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }

  const { faults } = deps.container;
  if (faults.chunkDelayMs > 0) await sleep(faults.chunkDelayMs);
  if (faults.crashBeforeRecord) crashNow();
  const out = await recordResults(em, chunk, chunk_index, job.attemptsMade + 1, results, true);
  if (out?.just_completed) {
    deps.log.info({ runId: run_id, items: out.item_count }, 'run completed');
    await onRunFinished(deps.container, run_id);
  }
  return { scored: out?.inserted ?? 0 };
}

function truncate(s: string | null | undefined): string | null {
  if (s === null || s === undefined) return null;
  return s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s;
}
