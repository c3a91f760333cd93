/**
 * Watching a run: one generator shared by the SSE route
 * (GET /v1/eval-runs/{id}/events) and the tRPC subscription watchEvalRun.
 * It reads the run's row every RUN_WATCH_INTERVAL_MS (a primary-key select,
 * tenant-scoped) and yields the EvalRun whenever it differs from the last one
 * yielded; it returns right after yielding a completed or failed run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Container } from '../../server/container.ts';
import { toEvalRunDto } from './eval-run.mapper.ts';
import type { EvalRunDto } from './eval-run.schema.ts';
import { findRun } from './eval-run.service.ts';

export const isFinished = (run: EvalRunDto): boolean => run.status === 'completed' || run.status === 'failed';

/**
 * Yields the run now, then on every change, until it ends or `signal` aborts
 * (then it returns without a finished run). The first read throws NOT_FOUND
 * for a missing run or another tenant's.
 */
export async function* watchEvalRun(
  em: EntityManager,
  tenantId: string,
  runId: string,
  opts: { intervalMs: number; signal: AbortSignal },
): AsyncGenerator<EvalRunDto, void> {
  let last = '';
  while (!opts.signal.aborted) {
    const run = toEvalRunDto(await findRun(em, tenantId, runId));
    const json = JSON.stringify(run);
    if (json !== last) {
      last = json;
      yield run;
    }
    if (isFinished(run)) return;
    try {
      await sleep(opts.intervalMs, undefined, { signal: opts.signal });
    } catch {
      return; // aborted
    }
  }
}

/**
 * Long-lived streams would hold `app.close()` until their runs end, so the
 * HTTP server aborts them all from its preClose hook (closeWatchers). Kept
 * per container (tests run several in one process). Plain listeners rather
 * than AbortSignal.any: a dependent signal of a long-lived one is not freed
 * on every Node 20.
 */
interface Watchers {
  closed: boolean;
  live: Set<AbortController>;
}
const registry = new WeakMap<Container, Watchers>();

function watchersOf(c: Container): Watchers {
  let w = registry.get(c);
  if (!w) {
    w = { closed: false, live: new Set() };
    registry.set(c, w);
  }
  return w;
}

export interface WatchHandle {
  /** Aborts when the client goes away or the server closes. */
  signal: AbortSignal;
  /** Whether the server is closing (rather than the client having left). */
  readonly serverClosing: boolean;
  /** Call when the watch ends, whatever ended it. */
  end(): void;
}

export function openWatch(c: Container, client?: AbortSignal): WatchHandle {
  const w = watchersOf(c);
  const ctl = new AbortController();
  const onClientGone = () => ctl.abort();
  client?.addEventListener('abort', onClientGone, { once: true });
  if (w.closed || client?.aborted) ctl.abort();
  else w.live.add(ctl);
  return {
    signal: ctl.signal,
    get serverClosing() {
      return w.closed;
    },
    end() {
      w.live.delete(ctl);
      client?.removeEventListener('abort', onClientGone);
    },
  };
}

/** Ends every watch of this container's server, and refuses new ones: the server is going away. */
export function closeWatchers(c: Container): void {
  const w = watchersOf(c);
  w.closed = true;
  for (const ctl of w.live) ctl.abort();
  w.live.clear();
}
