/**
 * One fault-test rig: a disposable PostgreSQL and a disposable redis-server
 * (never the machine's shared ones), real evalgate processes on them
 * (`server/main.ts api|worker`), and an in-test container for fixtures and
 * for the invariants checked at the end of every fault test.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { expect } from 'vitest';
import { createContainer, type Container } from '../../server/container.ts';
import { loadEnv } from '../../server/env.ts';
import { sql } from '../../server/sql.ts';
import { assertCountersExact, items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import {
  freePort,
  spawnEvalgate,
  startDisposablePostgres,
  startDisposableRedis,
  type DisposablePostgres,
  type DisposableRedis,
  type EvalgateProcess,
} from '../helpers/processes.ts';
import { waitFor } from '../helpers/stack.ts';

/** Small timings so that a fault is noticed within seconds (README: Configuration). */
export const FAULT_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'info',
  CHUNK_SIZE: '25',
  WORKER_CONCURRENCY: '2',
  LOCK_DURATION_MS: '2000',
  STALLED_INTERVAL_MS: '1000',
  RECONCILE_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '10000',
  DATABASE_POOL_MAX: '5',
};

export interface ApiProcess {
  proc: EvalgateProcess;
  baseUrl: string;
}

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

export class Rig {
  readonly procs: EvalgateProcess[] = [];
  tenant!: TenantFixture;
  evalVersionId!: string;
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
    const w = spawnEvalgate('worker', { ...this.env, ...extra });
    this.procs.push(w);
    await Promise.race([
      waitFor(async () => w.output().includes('"msg":"workers started"'), { timeoutMs: 60_000, intervalMs: 50, what: 'worker start' }),
      w.exited.then((e) => {
        throw new Error(`worker exited during start (${JSON.stringify(e)}): ${w.output().slice(-2000)}`);
      }),
    ]);
    return w;
  }

  /** `server/main.ts api` on a free port; resolves once /healthz answers. */
  async startApi(extra: Record<string, string> = {}): Promise<ApiProcess> {
    const port = await freePort();
    const proc = spawnEvalgate('api', { ...this.env, PORT: String(port), HOST: '127.0.0.1', ...extra });
    this.procs.push(proc);
    const baseUrl = `http://127.0.0.1:${port}`;
    await Promise.race([
      waitFor(async () => (await fetch(`${baseUrl}/healthz`)).ok, { timeoutMs: 60_000, intervalMs: 100, what: 'api start' }),
      proc.exited.then((e) => {
        throw new Error(`api exited during start (${JSON.stringify(e)}): ${proc.output().slice(-2000)}`);
      }),
    ]);
    return { proc, baseUrl };
  }

  async dataset(n: number, data = items(n)): Promise<string> {
    return (await makeDataset(this.container, this.tenant.id, data)).datasetId;
  }

  /** POST /v1/datasets/{id}/runs, timed (a request that never answers fails after `timeoutMs`). */
  async schedule(
    api: ApiProcess,
    datasetId: string,
    opts: { evalVersionId?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Timed<{ status: number; body: Record<string, unknown> }>> {
    return timed(() =>
      request(api.baseUrl, 'POST', `/v1/datasets/${datasetId}/runs`, this.tenant.keys.member, { eval_version_id: opts.evalVersionId ?? this.evalVersionId }, opts),
    );
  }

  /** GET /v1/eval-runs/{id}, timed. */
  async getRun(api: ApiProcess, runId: string): Promise<Timed<{ status: number; body: Record<string, unknown> }>> {
    return timed(() => request(api.baseUrl, 'GET', `/v1/eval-runs/${runId}`, this.tenant.keys.viewer));
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
    const run = await this.run(runId);
    expect(run.status).toBe('completed');
    expect(run.item_count).toBe(itemCount);
    const em = this.em;
    await assertCountersExact(em, runId);
    const [row] = await sql<{ results: number; distinct_items: number; pinned: number }>(
      em,
      `select count(*)::int as results, count(distinct i.item_id)::int as distinct_items,
              (select item_count from eval_runs where id = ?) as pinned
         from eval_run_items i where i.run_id = ?`,
      [runId, runId],
    );
    expect(row).toEqual({ results: itemCount, distinct_items: itemCount, pinned: itemCount });
    const [chunks] = await sql<{ undone: number }>(em, 'select count(*)::int as undone from eval_run_chunks where run_id = ? and done_at is null', [runId]);
    expect(chunks?.undone).toBe(0);
    return { lost: itemCount - (row?.distinct_items ?? 0), duplicates: (row?.results ?? 0) - (row?.distinct_items ?? 0) };
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
    const ready = await timed(async () => {
      const res = await fetch(`${api.baseUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
    });
    expect(ready.value.status).toBe(503);
    expect(ready.value.body.checks.redis).toMatch(/^failed/);
    expect(ready.value.body.checks.postgres).toBe('ok');
    return { runId, scheduleMs: sched.ms, readMs: read.ms, readyzMs: ready.ms };
  }

  /** The disposable redis-server's pid (to freeze it with SIGSTOP). */
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
    for (const p of this.procs) if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
    await Promise.all(this.procs.map((p) => p.exited));
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
