/**
 * Watching a run: one feed per (tenant, run) per process, shared by the SSE
 * route (GET /v1/eval-runs/{id}/events) and the tRPC subscription
 * watchEvalRun. However many clients watch a run, the process reads its row
 * once every RUN_WATCH_INTERVAL_MS (a primary-key select, tenant-scoped); the
 * feed starts with its first watcher and stops when its last one leaves, or
 * right after it has seen the run completed or failed.
 *
 * A feed keeps only the latest EvalRun, never a queue: each watcher pulls at
 * its own pace and gets whatever is latest when it asks, so a slow consumer
 * skips intermediate snapshots instead of holding memory or holding the
 * others back.
 *
 * A tenant may have at most MAX_WATCHERS_PER_TENANT watches open in one
 * process (429 with Retry-After beyond it), so one tenant's thousand tabs
 * cannot take every socket and timer of a process from the others.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Deps } from '../shared/deps.ts';
import { RateLimitedError } from '../shared/errors.ts';
import { readsFromReplica } from '../shared/sql.ts';
import { toEvalRunDto } from './eval-run.mapper.ts';
import type { EvalRunDto } from './eval-run.schema.ts';
import { findRun } from './eval-run.service.ts';

export const isFinished = (run: EvalRunDto): boolean => run.status === 'completed' || run.status === 'failed';

/** What a refused watcher is told to wait: watches are long, so a slot rarely frees within a second. */
export const WATCHER_RETRY_AFTER_SECONDS = 5;

/** The shared poll of one run for one tenant. */
class RunFeed {
  private watchers = 0;
  private latest: EvalRunDto | undefined;
  private latestJson = '';
  /** Bumped on every change (and on failure): a watcher compares it with the last one it saw. */
  version = 0;
  private failure: { error: unknown } | undefined;
  private readonly wakers = new Set<() => void>();
  private readonly stop = new AbortController();
  private started = false;

  constructor(
    private readonly hub: Hub,
    private readonly key: string,
    private readonly read: () => Promise<EvalRunDto>,
    private readonly intervalMs: number,
  ) {}

  join(): void {
    this.watchers++;
    if (!this.started) {
      this.started = true;
      void this.loop();
    }
  }

  /** The last watcher leaving stops the poll at once (its sleep is aborted) and forgets the feed. */
  leave(): void {
    if (--this.watchers > 0) return;
    this.retire();
  }

  /**
   * The latest run once it is newer than `seen` (skipping whatever came in
   * between), or undefined when `signal` aborts first; throws what the read
   * threw (NOT_FOUND for a missing run or another tenant's, a lost database).
   */
  async next(seen: number, signal: AbortSignal): Promise<{ run: EvalRunDto; version: number } | undefined> {
    while (!signal.aborted) {
      if (this.failure) throw this.failure.error;
      if (this.version > seen && this.latest) return { run: this.latest, version: this.version };
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.wakers.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.wakers.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    return undefined;
  }

  private publish(): void {
    for (const wake of [...this.wakers]) wake();
  }

  private retire(): void {
    this.stop.abort();
    this.hub.forget(this.key, this);
  }

  private async loop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      let run: EvalRunDto;
      try {
        this.hub.polls++;
        run = await this.read();
      } catch (error) {
        // Every watcher of this feed gets the same answer; a watcher that comes later starts a new feed.
        this.failure = { error };
        this.version++;
        this.retire();
        this.publish();
        return;
      }
      const json = JSON.stringify(run);
      if (json !== this.latestJson) {
        this.latest = run;
        this.latestJson = json;
        this.version++;
        this.publish();
      }
      if (isFinished(run)) {
        // Nothing changes any more: the watchers still attached get this run last; new ones read it afresh.
        this.retire();
        return;
      }
      try {
        await sleep(this.intervalMs, undefined, { signal: this.stop.signal });
      } catch {
        return; // the last watcher left
      }
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
class Hub {
  closed = false;
  readonly live = new Set<AbortController>();
  readonly feeds = new Map<string, RunFeed>();
  readonly perTenant = new Map<string, number>();
  /** Reads of runs made for watchers since the process started (tests count them). */
  polls = 0;

  forget(key: string, feed: RunFeed): void {
    if (this.feeds.get(key) === feed) this.feeds.delete(key);
  }
}
const registry = new WeakMap<Deps, Hub>();

function hubOf(c: Deps): Hub {
  let h = registry.get(c);
  if (!h) {
    h = new Hub();
    registry.set(c, h);
  }
  return h;
}

export interface WatchHandle {
  /** Aborts when the client goes away or the server closes. */
  signal: AbortSignal;
  /** Whether the server is closing (rather than the client having left). */
  readonly serverClosing: boolean;
  /** Call when the watch ends, whatever ended it (idempotent; an abort calls it too). */
  end(): void;
}

/**
 * Takes one of the tenant's watcher slots for as long as the watch lasts.
 * Throws RateLimitedError (429, Retry-After) when the tenant already has
 * MAX_WATCHERS_PER_TENANT watches open in this process.
 */
export function openWatch(c: Deps, tenantId: string, client?: AbortSignal): WatchHandle {
  const h = hubOf(c);
  const max = c.env.MAX_WATCHERS_PER_TENANT;
  const open = h.perTenant.get(tenantId) ?? 0;
  if (open >= max) {
    throw new RateLimitedError(
      `too many open watches for this organization (at most ${max} per server); close some or retry in ${WATCHER_RETRY_AFTER_SECONDS} s`,
      WATCHER_RETRY_AFTER_SECONDS,
    );
  }
  h.perTenant.set(tenantId, open + 1);
  const ctl = new AbortController();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    h.live.delete(ctl);
    client?.removeEventListener('abort', onClientGone);
    ctl.signal.removeEventListener('abort', end);
    const left = (h.perTenant.get(tenantId) ?? 1) - 1;
    if (left > 0) h.perTenant.set(tenantId, left);
    else h.perTenant.delete(tenantId);
  };
  const onClientGone = () => ctl.abort();
  client?.addEventListener('abort', onClientGone, { once: true });
  // A slot is freed the moment its watch is aborted, even if the stream's own cleanup never runs
  // (a subscription whose generator tRPC never started).
  ctl.signal.addEventListener('abort', end, { once: true });
  if (h.closed || client?.aborted) ctl.abort();
  else h.live.add(ctl);
  return {
    signal: ctl.signal,
    get serverClosing() {
      return h.closed;
    },
    end,
  };
}

/**
 * The run now, then on every change, until it ends or the watch aborts (then
 * it returns without a finished run). The run is read by the (tenant, run)
 * feed this watch joins, never by the watch itself. Resolves once the first
 * state is known, so a missing run (or another tenant's) is a NOT_FOUND
 * thrown here, before anything is streamed.
 */
export async function watchEvalRun(c: Deps, tenantId: string, runId: string, signal: AbortSignal): Promise<AsyncGenerator<EvalRunDto, void>> {
  const h = hubOf(c);
  const key = `${tenantId}:${runId}`;
  let feed = h.feeds.get(key);
  if (!feed) {
    // the watch polls: a replica may serve it (it lags by as much as replication does)
    feed = new RunFeed(h, key, () => readRun(readsFromReplica(c.orm.em.fork() as EntityManager), tenantId, runId), c.env.RUN_WATCH_INTERVAL_MS);
    h.feeds.set(key, feed);
  }
  const joined = feed;
  joined.join();
  let left = false;
  const leave = () => {
    if (left) return;
    left = true;
    signal.removeEventListener('abort', leave);
    joined.leave();
  };
  signal.addEventListener('abort', leave, { once: true });
  let first: { run: EvalRunDto; version: number } | undefined;
  try {
    first = await joined.next(0, signal);
  } catch (err) {
    leave();
    throw err;
  }
  if (signal.aborted) leave();
  return (async function* follow() {
    try {
      for (let got = first; got; got = await joined.next(got.version, signal)) {
        yield got.run;
        if (isFinished(got.run)) return;
      }
    } finally {
      leave();
    }
  })();
}

const readRun = async (em: EntityManager, tenantId: string, runId: string) => toEvalRunDto(await findRun(em, tenantId, runId));

/** Ends every watch of this container's server, and refuses new ones: the server is going away. */
export function closeWatchers(c: Deps): void {
  const h = hubOf(c);
  h.closed = true;
  for (const ctl of [...h.live]) ctl.abort();
  h.live.clear();
}

/** What this process's watches cost right now: for tests and diagnostics. */
export function watchStats(c: Deps): { polls: number; feeds: number; watchers: Record<string, number> } {
  const h = hubOf(c);
  return { polls: h.polls, feeds: h.feeds.size, watchers: Object.fromEntries(h.perTenant) };
}
