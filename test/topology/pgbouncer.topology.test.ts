/**
 * evalgate behind a real PgBouncer (Debian's `pgbouncer`, started by the test
 * on a free port, README: Running past one machine). In transaction pooling
 * the API process, a worker process and an in-process container share 4
 * server connections among 60 client connections, so consecutive statements
 * of one client run on different server connections: what breaks named
 * statements and makes a session SET leak. PgBouncer also refuses startup
 * parameters it does not know ("unsupported startup parameter:
 * statement_timeout"), so nothing may be sent at connect.
 */
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pg from 'pg';
import pino from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import { createContainer, type Container } from '../../server/container.ts';
import { dropDatabase, ensureDatabase } from '../../server/db.ts';
import { loadEnv } from '../../server/env.ts';
import { sql } from '../../domain/shared/sql.ts';
import { assertExactlyOnce } from '../helpers/exactly-once.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { killAll, startEvalgateApi, startEvalgateWorker, type EvalgateApi, type EvalgateProcess } from '../helpers/processes.ts';
import { deleteKeys, PG_BASE, testEnv, uniqueName, waitFor } from '../helpers/stack.ts';
import { pgbouncerVersion, startPgbouncer, type Bouncer } from '../helpers/pgbouncer.ts';

const POOL_SIZE = 4;
const RUNS = 200;
const CONNECTIONS = 20;
const ITEMS = 20;
/** On the role in the test's database: what an operator sets behind transaction pooling (README). */
const ROLE_TIMEOUT = '10s';

/** A logger whose lines the test reads. */
function capturedLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

/** Lines at pino's error level or above (50 error, 60 fatal). */
function errorLines(output: string): string[] {
  return output.split('\n').filter((l) => /"level":(50|60)/.test(l));
}

function pgCode(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

describe('behind PgBouncer', () => {
  const db = uniqueName('evalgate_pgb');
  const direct = `${PG_BASE}/${db}`;
  /** Created and migrated by evalgate itself, past PgBouncer (DATABASE_MIGRATION_URL). */
  const db2 = uniqueName('evalgate_pgb_mig');
  const procs: EvalgateProcess[] = [];
  const containers: Container[] = [];
  let bouncer: Bouncer | undefined;
  let env: Record<string, string>;
  let c: Container;
  let containerLog: ReturnType<typeof capturedLog>;
  let apiProc: EvalgateApi;
  let worker: EvalgateProcess;
  let t: TenantFixture;

  beforeAll(async () => {
    // Fails the file, naming the install step, when the binary is missing: never a silent skip.
    pgbouncerVersion();
    await ensureDatabase(direct);
    // Before PgBouncer opens a server connection to it: every one starts with it.
    const admin = new pg.Client({ connectionString: direct });
    await admin.connect();
    await admin.query(`alter role postgres in database "${db}" set statement_timeout = '${ROLE_TIMEOUT}'`);
    await admin.end();
    bouncer = await startPgbouncer({
      poolSize: POOL_SIZE,
      databases: [
        { alias: db, dbname: db },
        { alias: `${db}_session`, dbname: db, poolMode: 'session' },
        { alias: db2, dbname: db2 },
        // ensureDatabase connects to `postgres` (here through PgBouncer too: no DATABASE_MIGRATION_URL)
        { alias: 'postgres', dbname: 'postgres' },
      ],
    });
    env = testEnv({
      DATABASE_URL: bouncer.url(db),
      DATABASE_POOLER: 'transaction',
      DATABASE_POOL_MAX: String(CONNECTIONS),
      MAX_ACTIVE_RUNS_PER_TENANT: String(RUNS * 2),
      LOG_LEVEL: 'info',
    });
    containerLog = capturedLog();
    // The first start migrates: through PgBouncer in transaction mode, in one transaction.
    c = await createContainer(loadEnv(env), { log: containerLog.log });
    containers.push(c);
    apiProc = await startEvalgateApi(env, { onSpawn: (p) => procs.push(p) });
    worker = await startEvalgateWorker(env, { onSpawn: (p) => procs.push(p) });
    t = await makeTenant(c);
  }, 180_000);

  afterAll(async () => {
    await killAll(procs);
    for (const x of containers) await x.close();
    await bouncer?.stop();
    if (env) {
      const redis = new Redis(env.REDIS_URL as string, { maxRetriesPerRequest: 1 });
      await deleteKeys(redis, `${env.EVALGATE_QUEUE_PREFIX}:*`);
      redis.disconnect();
    }
    // the role's setting in this database goes with it
    await dropDatabase(direct);
    await dropDatabase(`${PG_BASE}/${db2}`);
  });

  it('refuses what evalgate used to send at connect (the rig is as strict as production)', async () => {
    const old = new pg.Client({ connectionString: bouncer!.url(db), statement_timeout: 120_000, connectionTimeoutMillis: 5_000 });
    old.on('error', () => undefined);
    await expect(old.connect()).rejects.toThrow(/unsupported startup parameter: statement_timeout/);
    await old.end().catch(() => undefined);
  });

  it(`schedules ${RUNS} runs at once over ${CONNECTIONS} connections, runs them and reads them back: zero errors`, async () => {
    const { datasetId } = await makeDataset(c, t.id, items(ITEMS, (i) => i % 4 !== 0));
    const { evalVersionId } = await makeEval(c, t.id);
    const agent = new Agent({ connections: CONNECTIONS });
    const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
      const res = await request(`${apiProc.baseUrl}${path}`, {
        method,
        dispatcher: agent,
        headers: { authorization: `Bearer ${t.keys.member}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
    };
    try {
      const scheduled = await Promise.all(
        Array.from({ length: RUNS }, () => call('POST', `/v1/datasets/${datasetId}/runs`, { eval_version_id: evalVersionId })),
      );
      const refused = scheduled.filter((r) => r.status !== 202);
      expect(refused.slice(0, 3), `${refused.length} of ${RUNS} schedules were not accepted`).toEqual([]);
      const ids = scheduled.map((r) => r.body.id as string);
      expect(new Set(ids).size).toBe(RUNS);

      await waitFor(
        async () => {
          const [row] = await sql<{ n: number }>(c.orm.em.fork(), `select count(*)::int as n from eval_runs where status = 'completed' and tenant_id = ?`, [t.id]);
          return row?.n === RUNS;
        },
        { timeoutMs: 240_000, intervalMs: 250, what: `${RUNS} runs to complete` },
      );
      for (const id of ids) await assertExactlyOnce(c.orm.em.fork(), id, ITEMS);

      const reads = await Promise.all(
        ids.flatMap((id) => [call('GET', `/v1/eval-runs/${id}`), call('GET', `/v1/eval-runs/${id}/items?limit=100`)]),
      );
      const failed = reads.filter((r) => r.status !== 200);
      expect(failed.slice(0, 3), `${failed.length} of ${reads.length} reads failed`).toEqual([]);
      const expectedPassed = Array.from({ length: ITEMS }, (_, i) => i % 4 !== 0).filter(Boolean).length;
      for (let i = 0; i < reads.length; i += 2) {
        const run = reads[i]!.body;
        expect({ status: run.status, completed: run.completed_count, passed: run.passed_count }).toEqual({
          status: 'completed',
          completed: ITEMS,
          passed: expectedPassed,
        });
        expect((reads[i + 1]!.body.data as unknown[]).length).toBe(ITEMS);
      }

      // Clients really shared server connections (else named statements would not have broken either).
      const servers = (await bouncer!.admin<{ database: string }>('SHOW SERVERS')).filter((s) => s.database === db);
      const clients = (await bouncer!.admin<{ database: string }>('SHOW CLIENTS')).filter((s) => s.database === db);
      expect(servers.length).toBeLessThanOrEqual(POOL_SIZE);
      expect(clients.length).toBeGreaterThan(POOL_SIZE * 2);

      expect(errorLines(apiProc.proc.output())).toEqual([]);
      expect(errorLines(worker.output())).toEqual([]);
      expect(errorLines(containerLog.lines.join('\n'))).toEqual([]);
      // the role's timeout (10 s) is within DATABASE_STATEMENT_TIMEOUT_MS (120 s): nothing to warn about
      expect([apiProc.proc.output(), worker.output(), ...containerLog.lines].join('\n')).not.toContain('statement_timeout is');
    } finally {
      await agent.close();
    }
  }, 360_000);

  it("cuts a slow statement through it: the role's statement timeout, in and outside a transaction", async () => {
    const em = c.orm.em.fork();
    const [shown] = await sql<{ statement_timeout: string }>(em, 'show statement_timeout');
    expect(shown?.statement_timeout).toBe(ROLE_TIMEOUT);
    const slow = await sql(em, 'select pg_sleep(600)').catch((err: unknown) => err);
    expect(pgCode(slow), String(slow)).toBe('57014'); // query_canceled: statement timeout
    const inTx = await em.fork().transactional((tx) => sql(tx, 'select pg_sleep(600)')).catch((err: unknown) => err);
    expect(pgCode(inTx), String(inTx)).toBe('57014');
  }, 120_000);

  it('says at start when the role has no statement timeout as short as DATABASE_STATEMENT_TIMEOUT_MS', async () => {
    const { log, lines } = capturedLog();
    const strict = await createContainer(loadEnv({ ...env, DATABASE_STATEMENT_TIMEOUT_MS: '5000' }), { log, migrate: false });
    containers.push(strict);
    const warned = lines.filter((l) => l.includes('ALTER ROLE'));
    expect(warned.length, lines.join('\n')).toBe(1);
    expect(warned[0]).toContain("the server's statement_timeout is 10000 ms");
  });

  it('session pooling: evalgate sets its own timeout on each connection and keeps named statements', async () => {
    const session = await createContainer(
      loadEnv({ ...env, DATABASE_URL: bouncer!.url(`${db}_session`), DATABASE_POOLER: 'session', DATABASE_POOL_MAX: '1', DATABASE_STATEMENT_TIMEOUT_MS: '1500' }),
      { log: pino({ level: 'silent' }), migrate: false },
    );
    containers.push(session);
    const em = session.orm.em.fork();
    const [shown] = await sql<{ statement_timeout: string }>(em, 'show statement_timeout');
    expect(shown?.statement_timeout).toBe('1500ms');
    const slow = await sql(em, 'select pg_sleep(600)').catch((err: unknown) => err);
    expect(pgCode(slow), String(slow)).toBe('57014');
    const { datasetId } = await makeDataset(session, t.id, items(3));
    const { evalVersionId } = await makeEval(session, t.id);
    for (let i = 0; i < 5; i++) expect((await insertPendingRun(session.orm.em.fork(), t.id, datasetId, evalVersionId)).status).toBe('pending');
    const [named] = await sql<{ n: number }>(em, `select count(*)::int as n from pg_prepared_statements where name = 'evalgate_insert_pending_run'`);
    expect(named?.n).toBe(1);
  }, 120_000);

  it('creates and migrates the database past PgBouncer when DATABASE_MIGRATION_URL names PostgreSQL itself', async () => {
    const migrated = await createContainer(
      loadEnv({ ...env, DATABASE_URL: bouncer!.url(db2), DATABASE_MIGRATION_URL: `${PG_BASE}/${db2}` }),
      { log: pino({ level: 'silent' }) },
    );
    containers.push(migrated);
    expect(await migrated.pendingMigrations()).toBe(0);
    const [row] = await sql<{ n: number }>(migrated.orm.em.fork(), 'select count(*)::int as n from mikro_orm_migrations');
    const [expected] = await sql<{ n: number }>(c.orm.em.fork(), 'select count(*)::int as n from mikro_orm_migrations');
    expect(row?.n).toBeGreaterThan(0);
    expect(row?.n).toBe(expected?.n);
  });
});
