/**
 * Part 1: the schedule endpoint under load. Four targets, each its own
 * process, loaded by autocannon in a process of its own at 50 connections:
 * (a) plain Fastify answering a static 202, (b) plain Fastify + pg + BullMQ
 * doing insertPendingRun's SQL and the enqueue, evalgate REST, evalgate tRPC.
 * Rounds interleave the targets so machine noise hits them alike.
 */
import { makeDataset, makeEval, makeTenant, items } from '../../test/helpers/factories.ts';
import { freePort } from '../../test/helpers/processes.ts';
import type { Bench } from '../lib/context.ts';
import { runLoad, type LoadResult, type LoadSpec } from '../lib/load.ts';
import { cpuMs, peakRssMb, spawnTs, waitHttp, type Proc } from '../lib/procs.ts';
import { median } from '../lib/stats.ts';

export type TargetName = 'static' | 'plain' | 'rest' | 'trpc';
export const TARGET_LABELS: Record<TargetName, string> = {
  static: 'baseline (a): plain Fastify, static 202',
  plain: 'baseline (b): plain Fastify + pg + BullMQ',
  rest: 'evalgate REST  POST /v1/datasets/{id}/runs',
  trpc: 'evalgate tRPC  POST /trpc/scheduleEvalRun',
};

export interface ScheduleRound extends LoadResult {
  /** CPU (user + system) the target process spent per successful request, ms */
  cpuPerReqMs: number;
  /** CPU of the bench database's PostgreSQL backends per successful request, ms (approximate) */
  pgCpuPerReqMs: number;
  /** committed PostgreSQL transactions (statements outside a transaction count one each) per successful request */
  pgXactPerReq: number;
}

export interface CapProbe {
  pending: number;
  cap: number;
  /** median wall time of the cap check's count (part of insertPendingRun's statement) from this process, ms */
  ms: number;
}

export interface ScheduleResult {
  connections: number;
  durationS: number;
  rounds: Record<TargetName, ScheduleRound[]>;
  capProbe: CapProbe[];
  apiPeakRssMb: number;
  /** runs left pending in one round (how far the tenant's active-run count grew) */
  pendingAfterRound: number[];
}

export async function benchSchedule(b: Bench): Promise<ScheduleResult> {
  const { smoke, rounds } = b.opts;
  const connections = 50;
  const durationS = smoke ? 2 : 10;
  const warmS = 3;
  // smoke: a warm-up of a few hundred requests instead of seconds
  const c = b.stack.container;
  const t = await makeTenant(c, 'bench-schedule');
  const ds = await makeDataset(c, t.id, items(100));
  const ev = await makeEval(c, t.id, { type: 'exact_match' });

  const [pStatic, pPlain] = [await freePort(), await freePort()];
  const procs: Proc[] = [];
  const staticProc = spawnTs('baseline-static', 'bench/baselines/static-server.ts', [], { env: { PORT: String(pStatic) } });
  const plainProc = spawnTs('baseline-plain', 'bench/baselines/plain-schedule-server.ts', [], {
    env: {
      PORT: String(pPlain),
      DATABASE_URL: b.stack.env.DATABASE_URL,
      REDIS_URL: b.stack.env.REDIS_URL,
      EVALGATE_QUEUE_PREFIX: b.stack.env.EVALGATE_QUEUE_PREFIX,
      DATABASE_POOL_MAX: b.evalgateEnv().DATABASE_POOL_MAX as string,
      TENANT_ID: t.id,
    },
  });
  procs.push(staticProc, plainProc);
  try {
    const [api] = await Promise.all([
      b.startApi('api-schedule'),
      waitHttp(`http://127.0.0.1:${pStatic}/healthz`, staticProc),
      waitHttp(`http://127.0.0.1:${pPlain}/healthz`, plainProc),
    ]);
    procs.push(api.proc);
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${t.keys.member}` };
    const restBody = JSON.stringify({ eval_version_id: ev.evalVersionId });
    const path = `/v1/datasets/${ds.datasetId}/runs`;
    const specs: Record<TargetName, Omit<LoadSpec, 'durationS'>> = {
      static: { url: `http://127.0.0.1:${pStatic}${path}`, method: 'POST', headers, body: restBody, connections },
      plain: { url: `http://127.0.0.1:${pPlain}${path}`, method: 'POST', headers, body: restBody, connections },
      rest: { url: `${api.base}${path}`, method: 'POST', headers, body: restBody, connections },
      trpc: { url: `${api.base}/trpc/scheduleEvalRun`, method: 'POST', headers, body: JSON.stringify({ id: ds.datasetId, eval_version_id: ev.evalVersionId }), connections },
    };
    // every target must do the real thing before it is timed
    for (const [name, spec] of Object.entries(specs)) {
      const res = await fetch(spec.url, { method: 'POST', headers: spec.headers, body: spec.body });
      const text = await res.text();
      if (res.status !== 202 && !(name === 'trpc' && res.status === 200)) throw new Error(`${name} answered ${res.status}: ${text.slice(0, 300)}`);
    }
    const order: TargetName[] = ['static', 'plain', 'rest', 'trpc'];
    const reset = async () => {
      // keep every round at the same starting point: no pending runs, no queued run-start jobs
      await b.pg.query(`delete from eval_runs where tenant_id = $1`, [t.id]);
      await b.pg.query('vacuum analyze eval_runs');
      await c.queues.runStart.drain(true);
    };
    b.log(`schedule: warm-up ${smoke ? '200 requests' : `${warmS} s`} per target`);
    for (const name of order) await runLoad({ ...specs[name], durationS: warmS, amount: smoke ? 200 : undefined });
    await reset();
    const out: Record<TargetName, ScheduleRound[]> = { static: [], plain: [], rest: [], trpc: [] };
    const procOf: Record<TargetName, Proc> = { static: staticProc, plain: plainProc, rest: api.proc, trpc: api.proc };
    const xacts = async () => {
      // cumulative statistics reach pg_stat_database within a second of a transaction's end
      await new Promise((r) => setTimeout(r, 1_100));
      const { rows } = await b.pg.query<{ n: string }>('select xact_commit as n from pg_stat_database where datname = current_database()');
      return Number(rows[0]?.n ?? 0);
    };
    const pgCpu = async () => {
      const { rows } = await b.pg.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()');
      return new Map(rows.map((r) => [r.pid, cpuMs(r.pid)]));
    };
    const pendingAfterRound: number[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const name of order) {
        const x0 = await xacts();
        const cpu0 = cpuMs(procOf[name].pid);
        const pg0 = await pgCpu();
        const res = await runLoad({ ...specs[name], durationS });
        const cpu = cpuMs(procOf[name].pid) - cpu0;
        let pgMs = 0;
        for (const [pid, after] of await pgCpu()) pgMs += after - (pg0.get(pid) ?? 0);
        const ok = Math.max(1, res.rps * res.durationS);
        const x = (await xacts()) - x0;
        out[name].push({ ...res, cpuPerReqMs: cpu / ok, pgCpuPerReqMs: pgMs / ok, pgXactPerReq: x / ok });
        if (name === 'rest') {
          const { rows } = await b.pg.query<{ n: number }>(`select count(*)::int as n from eval_runs where tenant_id = $1 and status = 'pending'`, [t.id]);
          pendingAfterRound.push(rows[0]?.n ?? 0);
        }
        b.log(`schedule round ${r + 1}/${rounds} ${name}: ${res.rps.toFixed(0)} req/s, p99 ${res.p99} ms, errors ${res.errors}`);
        await reset();
      }
    }
    const capProbe = await probeCapCheck(b, t.id, ds.datasetId, ev.evalVersionId, smoke ? [0, 1_000] : [0, 1_000, 10_000]);
    return { connections, durationS, rounds: out, apiPeakRssMb: peakRssMb(api.proc.pid), pendingAfterRound, capProbe };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

/**
 * What the active-run count inside insertPendingRun's statement (the cap
 * check) costs with `pending` runs of the tenant already pending, at the
 * default cap (50) and at the bench's cap: the count stops at the cap, so it
 * costs O(min(active runs, cap)). Measured here as the same count and
 * dataset lookup on their own.
 */
async function probeCapCheck(b: Bench, tenantId: string, datasetId: string, evalVersionId: string, levels: number[]): Promise<CapProbe[]> {
  const { rows } = await b.pg.query<{ id: string }>('select id from dataset_versions where dataset_id = $1 order by version desc limit 1', [datasetId]);
  const versionId = rows[0]?.id;
  const out: CapProbe[] = [];
  const query = `select (select count(*)::int from (select 1 from eval_runs where tenant_id = $1 and status in ('pending', 'running') limit $2) a) as active,
            (select v.item_count from datasets d join dataset_versions v on v.dataset_id = d.id and v.version = d.latest_version
              where d.id = $3 and d.tenant_id = $4) as items`;
  for (const pending of levels) {
    await b.pg.query('delete from eval_runs where tenant_id = $1', [tenantId]);
    if (pending > 0) {
      await b.pg.query(
        `insert into eval_runs (id, tenant_id, dataset_id, dataset_version_id, eval_version_id, status, item_count, completed_count, passed_count,
                                failed_count, error_count, score_sum, created_at, updated_at)
         select gen_random_uuid(), $1, $2, $3, $4, 'pending', 100, 0, 0, 0, 0, 0, now(), now() from generate_series(1, $5)`,
        [tenantId, datasetId, versionId, evalVersionId, pending],
      );
    }
    await b.pg.query('vacuum analyze eval_runs');
    for (const cap of [50, Number(b.evalgateEnv().MAX_ACTIVE_RUNS_PER_TENANT)]) {
      const times: number[] = [];
      for (let i = 0; i < 30; i++) {
        const t0 = performance.now();
        await b.pg.query(query, [tenantId, cap, datasetId, tenantId]);
        times.push(performance.now() - t0);
      }
      out.push({ pending, cap, ms: median(times.slice(5)) });
    }
  }
  await b.pg.query('delete from eval_runs where tenant_id = $1', [tenantId]);
  return out;
}
