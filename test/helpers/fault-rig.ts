/**
 * One fault-test rig: a disposable PostgreSQL and a disposable redis-server
 * (never the machine's shared ones), real evalgate processes on them
 * (`server/main.ts api|worker`), and an in-test container for fixtures and
 * for the invariants checked at the end of every fault test. The steps the
 * fault tests share live here (faultTest, startRun, the faults, completesExactlyOnce),
 * so that each test reads as its scenario.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { expect, it } from 'vitest';
import { createContainer, type Container } from '../../server/container.ts';
import { loadEnv } from '../../server/env.ts';
import { sql } from '../../domain/shared/sql.ts';
import { assertExactlyOnce } from './exactly-once.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from './factories.ts';
import {
  FAST_RECOVERY_ENV,
  killAll,
  spawnEvalgate,
  startDisposablePostgres,
  startDisposableRedis,
  startEvalgateApi,
  startEvalgateWorker,
  type DisposablePostgres,
  type DisposableRedis,
  type EvalgateApi,
  type EvalgateProcess,
} from './processes.ts';
import { waitFor } from './stack.ts';

/** Small timings so that a fault is noticed within seconds (README: Configuration); info logs, which the start helpers read. */
export const FAULT_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'info',
  ...FAST_RECOVERY_ENV,
  DATABASE_POOL_MAX: '5',
};

export type ApiProcess = EvalgateApi;

export interface RunRow {
  id: string;
  status: 'pending' | 'running' | 'completed' | 'failed';
  item_count: number;
  completed_count: number;
  passed_count: number;
  failed_count: number;
  error_count: number;
  /** completed_at in epoch ms (Postgres clock = this machine's clock). */
  completed_ms: number | null;
}

export interface Timed<T> {
  ms: number;
  value: T;
}

/** Counters a completed run must show, besides `completed_count`. */
export type Counts = Partial<Pick<RunRow, 'passed_count' | 'failed_count' | 'error_count'>>;

/** What every `[fault]` line ends with: items checked, items without a result, results beyond one per item. */
export interface Tally {
  items: number;
  lost: number;
  duplicates: number;
}

/** The tally of several runs. */
export function addTallies(...tallies: Tally[]): Tally {
  return tallies.reduce((a, b) => ({ items: a.items + b.items, lost: a.lost + b.lost, duplicates: a.duplicates + b.duplicates }));
}

/** A fault in progress: a dependency stopped, crashed or frozen until `end()`. */
export interface Outage {
  /** When (epoch ms) the fault was injected. */
  readonly beganAt: number;
  /** Waits until `ms` after the fault was injected. */
  lasting(ms: number): Promise<void>;
  /** Brings the dependency back; resolves with when (epoch ms) it was back. */
  end(): Promise<number>;
}

/**
 * `it(name)` on a rig of its own: the evalgate processes' logs are printed if
 * the test fails, and the rig (processes, servers, data) is torn down after it.
 */
export function faultTest(name: string, body: (rig: Rig) => Promise<void>): void {
  it(name, async ({ onTestFailed }) => {
    const rig = await Rig.start();
    onTestFailed(() => rig.dumpLogs());
    try {
      await body(rig);
    } finally {
      await rig.close();
    }
  });
}

export class Rig {
  readonly procs: EvalgateProcess[] = [];
  tenant!: TenantFixture;
  evalVersionId!: string;
  /** The redis-server's pid while it is frozen (SIGSTOP), to thaw it at close. */
  private frozenRedis: number | undefined;
  private constructor(
    readonly pg: DisposablePostgres,
    readonly redis: DisposableRedis,
    readonly env: Record<string, string>,
    readonly container: Container,
  ) {}

  static async start(): Promise<Rig> {
    const [pg, redis] = await Promise.all([startDisposablePostgres(), startDisposableRedis()]);
    const env = { ...FAULT_ENV, DATABASE_URL: pg.databaseUrl('evalgate'), REDIS_URL: redis.url };
    // Creates the database and applies the migrations before any evalgate process starts.
    const container = await createContainer(loadEnv({ ...env, LOG_LEVEL: 'silent' }), { log: pino({ level: 'silent' }) });
    const rig = new Rig(pg, redis, env, container);
    rig.tenant = await makeTenant(container);
    rig.evalVersionId = (await makeEval(container, rig.tenant.id)).evalVersionId;
    return rig;
  }

  get em() {
    return this.container.orm.em.fork();
  }

  /** `server/main.ts worker`; resolves once its workers have started. */
  async startWorker(extra: Record<string, string> = {}): Promise<EvalgateProcess> {
    return startEvalgateWorker({ ...this.env, ...extra }, { onSpawn: (p) => this.procs.push(p) });
  }

  /** `server/main.ts worker` without waiting for its start: for a worker that may die before it reports one. */
  spawnWorker(extra: Record<string, string> = {}): EvalgateProcess {
    const p = spawnEvalgate('worker', { ...this.env, ...extra });
    this.procs.push(p);
    return p;
  }

  /** `server/main.ts api` on a port it picks itself (no EADDRINUSE race); resolves once /healthz answers. */
  async startApi(extra: Record<string, string> = {}): Promise<ApiProcess> {
    return startEvalgateApi({ ...this.env, ...extra }, { onSpawn: (p) => this.procs.push(p) });
  }

  /**
   * The opening most fault tests share: an API and one worker per entry of
   * `workers` (that env on top of the rig's) start, and a run of `datasetId`
   * is scheduled (202). `api` is env for the API on top of the rig's; `body`
   * adds fields to the schedule request (schedule).
   */
  async startRun(
    datasetId: string,
    opts: { workers: Record<string, string>[]; evalVersionId?: string; body?: Record<string, unknown>; api?: Record<string, string> },
  ): Promise<{ api: ApiProcess; workers: EvalgateProcess[]; runId: string }> {
    // The API before the workers: processes that start together share the CPU of a busy machine, and each must start within its timeout.
    const api = await this.startApi(opts.api);
    const workers = await Promise.all(opts.workers.map((extra) => this.startWorker(extra)));
    const sched = await this.schedule(api, datasetId, { evalVersionId: opts.evalVersionId, body: opts.body });
    expect(sched.value.status, JSON.stringify(sched.value.body)).toBe(202);
    return { api, workers, runId: sched.value.body.id as string };
  }

  async dataset(n: number, data = items(n)): Promise<string> {
    return (await makeDataset(this.container, this.tenant.id, data)).datasetId;
  }

  /**
   * POST /v1/datasets/{id}/runs, timed (a request that never answers fails after `timeoutMs`).
   * `body` adds fields to `{ eval_version_id }` (a target, cache, max_cost_usd).
   */
  async schedule(
    api: ApiProcess,
    datasetId: string,
    opts: { evalVersionId?: string; body?: Record<string, unknown>; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Timed<{ status: number; body: Record<string, unknown> }>> {
    return timed(() =>
      request(api.baseUrl, 'POST', `/v1/datasets/${datasetId}/runs`, this.tenant.keys.member, { eval_version_id: opts.evalVersionId ?? this.evalVersionId, ...opts.body }, opts),
    );
  }

  /** GET /v1/eval-runs/{id}, timed. */
  async getRun(api: ApiProcess, runId: string): Promise<Timed<{ status: number; body: Record<string, unknown> }>> {
    return timed(() => request(api.baseUrl, 'GET', `/v1/eval-runs/${runId}`, this.tenant.keys.viewer));
  }

  /** POST /v1/eval-runs/{id}/{action} (cancel, retry) as a member, timed. */
  async runAction(api: ApiProcess, runId: string, action: 'cancel' | 'retry'): Promise<Timed<{ status: number; body: Record<string, unknown> }>> {
    return timed(() => request(api.baseUrl, 'POST', `/v1/eval-runs/${runId}/${action}`, this.tenant.keys.member));
  }

  /** GET /readyz, timed. */
  async readyz(api: ApiProcess): Promise<Timed<{ status: number; body: { checks: Record<string, string> } }>> {
    return timed(async () => {
      const res = await fetch(`${api.baseUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
    });
  }

  /** The run as Postgres has it. */
  async run(runId: string): Promise<RunRow> {
    const [row] = await sql<RunRow>(
      this.em,
      `select id, status, item_count, completed_count, passed_count, failed_count, error_count,
              (extract(epoch from completed_at) * 1000)::float8 as completed_ms
         from eval_runs where id = ?`,
      [runId],
    );
    if (!row) throw new Error(`run ${runId} not found`);
    return row;
  }

  /** When the first result after `sinceMs` (epoch ms) was recorded: how soon work resumed after a fault. */
  async firstResultAfter(runId: string, sinceMs: number): Promise<number | null> {
    const [row] = await sql<{ at: number | null }>(
      this.em,
      `select (extract(epoch from min(created_at)) * 1000)::float8 as at
         from eval_run_items where run_id = ? and created_at >= to_timestamp(?::float8 / 1000)`,
      [runId, sinceMs],
    );
    return row?.at ?? null;
  }

  async waitProgress(runId: string, share: number, timeoutMs = 60_000): Promise<RunRow> {
    return waitFor(
      async () => {
        const r = await this.run(runId);
        if (r.status === 'completed' || r.status === 'failed') throw new Error(`run ended before ${share * 100}%`);
        return r.completed_count >= r.item_count * share ? r : null;
      },
      { timeoutMs, intervalMs: 20, what: `run ${runId} at ${share * 100}%` },
    );
  }

  /** Polls Postgres (and rides out a Postgres outage) until the run is completed or failed. */
  async waitEnd(runId: string, timeoutMs = 90_000): Promise<RunRow> {
    return waitFor(
      async () => {
        const r = await this.run(runId);
        return r.status === 'completed' || r.status === 'failed' ? r : null;
      },
      { timeoutMs, intervalMs: 100, what: `run ${runId} to end` },
    );
  }

  /**
   * The invariants every fault test ends with: the run completed, each item has
   * exactly one result, counters equal count(results) per status.
   */
  async assertExactlyOnce(runId: string, itemCount: number): Promise<{ lost: number; duplicates: number }> {
    return assertExactlyOnce(this.em, runId, itemCount);
  }

  /**
   * Waits for the run to end: it must be `completed` with all `itemCount` items
   * and `counts`, every item scored exactly once (assertExactlyOnce).
   */
  async completesExactlyOnce(
    runId: string,
    itemCount: number,
    counts: Counts = {},
    timeoutMs?: number,
  ): Promise<{ done: RunRow; tally: Tally }> {
    const done = await this.waitEnd(runId, timeoutMs);
    expect(done).toMatchObject({ status: 'completed', completed_count: itemCount, ...counts });
    return { done, tally: { items: itemCount, ...(await this.assertExactlyOnce(runId, itemCount)) } };
  }

  /** Injects a fault now (`inject`); `restore` ends it. */
  private async outage(inject: () => Promise<unknown>, restore: () => Promise<unknown>): Promise<Outage> {
    const began = performance.now();
    const beganAt = Date.now();
    await inject();
    return {
      beganAt,
      lasting: (ms) => until(began, ms),
      end: async () => {
        await restore();
        return Date.now();
      },
    };
  }

  /** redis-server SIGKILLed; `end()` starts it again, empty (it keeps nothing on disk), on the same port. */
  async stopRedis(): Promise<Outage> {
    return this.outage(() => this.redis.stop(), () => this.redis.start());
  }

  /** redis-server frozen with SIGSTOP (connections open, nothing answers); `end()` sends SIGCONT. */
  async freezeRedis(): Promise<Outage> {
    const pid = await this.redisPid();
    return this.outage(
      async () => {
        process.kill(pid, 'SIGSTOP');
        this.frozenRedis = pid;
      },
      async () => this.thawRedis(),
    );
  }

  private thawRedis(): void {
    if (this.frozenRedis === undefined) return;
    try {
      process.kill(this.frozenRedis, 'SIGCONT');
    } catch {
      // already gone
    }
    this.frozenRedis = undefined;
  }

  /** PostgreSQL crashed (`pg_ctl -m immediate`: no checkpoint, every connection cut); `end()` starts it again. */
  async crashPostgres(): Promise<Outage> {
    return this.outage(() => this.pg.stop('immediate'), () => this.pg.start());
  }

  /**
   * Schedules a run while Redis is away (down or frozen): the API must answer 202 without
   * waiting for Redis, the run waits `pending` in Postgres, reads still answer and /readyz names Redis.
   */
  async scheduleWhileRedisAway(api: ApiProcess, datasetId: string) {
    const sched = await this.schedule(api, datasetId, { timeoutMs: 15_000 });
    expect(sched.value.status, JSON.stringify(sched.value.body)).toBe(202);
    const runId = sched.value.body.id as string;
    expect(sched.value.body.status).toBe('pending');
    expect((await this.run(runId)).status).toBe('pending');
    const read = await this.getRun(api, runId);
    expect(read.value.status).toBe(200);
    const ready = await this.readyz(api);
    expect(ready.value.status).toBe(503);
    expect(ready.value.body.checks.redis).toMatch(/^failed/);
    expect(ready.value.body.checks.postgres).toBe('ok');
    return { runId, scheduleMs: sched.ms, readMs: read.ms, readyzMs: ready.ms };
  }

  /**
   * Redis goes away (`fault`: down or frozen) at 30 % of a 1,500-item run
   * (one worker, 100 ms a chunk), and after `settleMs` a second run (200 items)
   * is scheduled (scheduleWhileRedisAway). Redis is back `lastingMs` after the
   * fault; the worker must have lived through it, and both runs must complete
   * exactly once. Returns what the `[fault]` line reports.
   */
  async redisAwayMidRun(fault: () => Promise<Outage>, opts: { settleMs: number; lastingMs: number }) {
    const n = 1_500;
    const ds = await this.dataset(n, items(n, (i) => i % 3 !== 0));
    const ds2 = await this.dataset(200);
    const { api, workers, runId } = await this.startRun(ds, { workers: [{ EVALGATE_FAULT: 'chunk-delay-ms=100' }] });
    const worker = workers[0]!;
    const at = await this.waitProgress(runId, 0.3);

    const outage = await fault();
    await sleep(opts.settleMs);
    const during = await this.scheduleWhileRedisAway(api, ds2);
    await outage.lasting(opts.lastingMs);
    // The run as Redis comes back.
    const mid = await this.run(runId);
    expect(worker.child.exitCode).toBeNull();

    const backAt = await outage.end();
    const first = await this.completesExactlyOnce(runId, n, { passed_count: 1_000, failed_count: 500 });
    const second = await this.completesExactlyOnce(during.runId, 200);
    expect(worker.child.exitCode).toBeNull();
    return {
      at_pct: Math.round((at.completed_count / n) * 100),
      mid,
      mid_pct: Math.round((mid.completed_count / n) * 100),
      away_s: seconds(backAt - outage.beganAt),
      during,
      resumed_s: seconds(((await this.firstResultAfter(runId, backAt)) ?? 0) - backAt),
      recovery_s: seconds((first.done.completed_ms ?? 0) - backAt),
      second_recovery_s: seconds((second.done.completed_ms ?? 0) - backAt),
      tally: addTallies(first.tally, second.tally),
    };
  }

  /** The disposable redis-server's pid, as the server itself reports it (to freeze it with SIGSTOP). */
  async redisPid(): Promise<number> {
    const info = await this.redis.client().info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    if (!pid) throw new Error('no process_id in INFO server');
    return pid;
  }

  /** BullMQ's view of the chunk queue (through the test container's producer connection). */
  async activeChunks(): Promise<number> {
    return this.container.queues.runChunk.getActiveCount();
  }

  /** Prints the tail of every process's log (for a failed test). */
  dumpLogs(): void {
    for (const [i, p] of this.procs.entries()) {
      process.stderr.write(`\n----- evalgate process ${i} (exit ${String(p.child.exitCode ?? p.child.signalCode)}) -----\n${p.output().slice(-6_000)}\n`);
    }
  }

  async close(): Promise<void> {
    // A frozen Redis would hang the container's QUIT.
    this.thawRedis();
    await killAll(this.procs);
    await this.container.close().catch(() => undefined);
    await this.redis.stop().catch(() => undefined);
    await this.pg.destroy();
  }
}

async function request(
  baseUrl: string,
  method: string,
  path: string,
  key: string,
  body?: unknown,
  opts: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  } catch {
    parsed = { raw: text.slice(0, 500) };
  }
  return { status: res.status, body: parsed };
}

export async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: Math.round(performance.now() - t0), value };
}

/** Waits until `ms` after `since` (performance.now() based). */
export async function until(since: number, ms: number): Promise<void> {
  const left = since + ms - performance.now();
  if (left > 0) await sleep(left);
}

const MEASUREMENTS = fileURLToPath(new URL('../../test-artifacts/fault-measurements.jsonl', import.meta.url));

/**
 * One line per fault on stdout (`[fault] …`), and the same as JSON in
 * test-artifacts/fault-measurements.jsonl: RELIABILITY.md quotes these.
 */
export function report(fault: string, m: Record<string, string | number | boolean>): void {
  const text = Object.entries(m)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : String(v)}`)
    .join(' ');
  console.log(`[fault] ${fault}: ${text}`);
  try {
    mkdirSync(fileURLToPath(new URL('../../test-artifacts/', import.meta.url)), { recursive: true });
    appendFileSync(MEASUREMENTS, `${JSON.stringify({ at: new Date().toISOString(), fault, ...m })}\n`);
  } catch {
    // measurements are a by-product; a read-only tree must not fail the test
  }
}

export const seconds = (ms: number) => Math.round(ms / 10) / 100;
