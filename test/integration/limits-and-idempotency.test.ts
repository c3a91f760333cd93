/**
 * Idempotency-Key on scheduleEvalRun, write rate limits shared by API
 * processes, per-tenant caps, and fair scheduling across runs.
 */
import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/_app.ts';
import { buildApp } from '../../server/http.ts';
import { createContainer } from '../../server/container.ts';
import { loadEnv } from '../../server/env.ts';
import { sql } from '../../domain/shared/sql.ts';
import pino from 'pino';
import type { AddressInfo } from 'node:net';
import { assertCountersExact, items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { getRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

async function schedule(base: string, key: string, datasetId: string, body: unknown, idem?: string) {
  const res = await fetch(`${base}/v1/datasets/${datasetId}/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...(idem ? { 'idempotency-key': idem } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, retryAfter: res.headers.get('retry-after') };
}

describe('Idempotency-Key', () => {
  let s: Stack;
  let t: TenantFixture;
  let ds: string;
  let ev: string;
  let ev2: string;
  beforeAll(async () => {
    s = await startStack({ workers: false });
    t = await makeTenant(s.container);
    ds = (await makeDataset(s.container, t.id, items(5))).datasetId;
    ev = (await makeEval(s.container, t.id)).evalVersionId;
    ev2 = (await makeEval(s.container, t.id)).evalVersionId;
  });
  afterAll(async () => s?.close());

  it('same key and body → the same run and the same 202 body; another body → 422', async () => {
    const first = await schedule(s.baseUrl, t.keys.member, ds, { eval_version_id: ev }, 'key-1');
    expect(first.status).toBe(202);
    const again = await schedule(s.baseUrl, t.keys.member, ds, { eval_version_id: ev }, 'key-1');
    expect(again.status).toBe(202);
    expect(again.body).toEqual(first.body);
    const other = await schedule(s.baseUrl, t.keys.member, ds, { eval_version_id: ev2 }, 'key-1');
    expect(other.status).toBe(422);
    expect(other.body).toEqual({ error: expect.stringMatching(/different request/) });
    // scoped to the tenant: another tenant may use the same key
    const u = await makeTenant(s.container, 'u');
    const uds = (await makeDataset(s.container, u.id, items(1))).datasetId;
    const uev = (await makeEval(s.container, u.id)).evalVersionId;
    expect((await schedule(s.baseUrl, u.keys.member, uds, { eval_version_id: uev }, 'key-1')).status).toBe(202);
    const [n] = await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from eval_runs where tenant_id = ?', [t.id]);
    expect(n?.n).toBe(1);
  });

  it('ten concurrent requests with one key create exactly one run; the others see 409 or the same run', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => schedule(s.baseUrl, t.keys.member, ds, { eval_version_id: ev2 }, 'burst')));
    const ok = answers.filter((a) => a.status === 202);
    const busy = answers.filter((a) => a.status === 409);
    expect(ok.length + busy.length).toBe(10);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((a) => a.body.id)).size).toBe(1);
    for (const b of busy) expect(b.body).toEqual({ error: expect.stringMatching(/still in progress/) });
    const [n] = await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from eval_runs where tenant_id = ? and eval_version_id = ?', [t.id, ev2]);
    expect(n?.n).toBe(1);
  });

  it('a failed request frees its key; a malformed key is 400; tRPC honours the header too', async () => {
    const missing = await schedule(s.baseUrl, t.keys.member, '0190a0b0-0000-7000-8000-00000000000a', { eval_version_id: ev }, 'retry-me');
    expect(missing.status).toBe(404);
    expect((await schedule(s.baseUrl, t.keys.member, ds, { eval_version_id: ev }, 'retry-me')).status).toBe(202);
    expect((await schedule(s.baseUrl, t.keys.member, ds, { eval_version_id: ev }, 'x'.repeat(300))).status).toBe(400);
    const rpc = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${s.baseUrl}/trpc`, headers: { authorization: `Bearer ${t.keys.member}`, 'idempotency-key': 'rpc-1' } })] });
    const a = await rpc.scheduleEvalRun.mutate({ id: ds, eval_version_id: ev });
    const b = await rpc.scheduleEvalRun.mutate({ id: ds, eval_version_id: ev });
    expect(b).toEqual(a);
  });
});

describe('rate limits and caps', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: false, env: { RATE_LIMIT_KEY_WRITES_PER_MINUTE: '6', RATE_LIMIT_TENANT_WRITES_PER_MINUTE: '10', MAX_ACTIVE_RUNS_PER_TENANT: '3', MAX_ITEMS_PER_RUN: '5' } });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  it('limits writes per key and per tenant across two API processes, with 429 { error } and Retry-After; reads are not limited', async () => {
    // a second API on the same database, Redis and prefix: the limits are shared
    const env2 = loadEnv({ ...Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])) });
    const c2 = await createContainer(env2, { log: pino({ level: 'silent' }) });
    const app2 = await buildApp(c2);
    await app2.listen({ port: 0, host: '127.0.0.1' });
    const base2 = `http://127.0.0.1:${(app2.server.address() as AddressInfo).port}`;
    try {
      const create = (base: string, key: string) =>
        fetch(`${base}/v1/datasets`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"name":"x"}' });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await create(i % 2 ? base2 : s.baseUrl, t.keys.member)).status);
      expect(statuses).toEqual([201, 201, 201, 201, 201, 201]);
      const limited = await create(base2, t.keys.member);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await limited.json()).toEqual({ error: expect.stringMatching(/too many writes for this API key/) });
      // another key of the same tenant still has room, until the tenant's 10
      for (let i = 0; i < 4; i++) expect((await create(s.baseUrl, t.keys.owner)).status).toBe(201);
      const tenantLimited = await create(s.baseUrl, t.keys.owner);
      expect(tenantLimited.status).toBe(429);
      expect(await tenantLimited.json()).toEqual({ error: expect.stringMatching(/this organization/) });
      expect(Number(tenantLimited.headers.get('retry-after'))).toBeGreaterThan(0);
      // the streamed upload (a plain Fastify route) counts against the same limits and answers the same way
      const upload = await fetch(`${s.baseUrl}/v1/datasets/${crypto.randomUUID()}/items/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.keys.owner}`, 'content-type': 'application/x-ndjson' },
        body: '{"input":"x"}\n',
      });
      expect(upload.status).toBe(429);
      expect(Number(upload.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await upload.json()).toEqual({ error: expect.stringMatching(/too many writes/) });
      const read = await fetch(`${s.baseUrl}/v1/datasets`, { headers: { authorization: `Bearer ${t.keys.member}` } });
      expect(read.status).toBe(200);
    } finally {
      await app2.close();
      await c2.close();
    }
  });

  it('caps active runs per tenant (429) and items per run (422)', async () => {
    const u = await makeTenant(s.container, 'capped');
    const ds = (await makeDataset(s.container, u.id, items(5))).datasetId;
    const big = (await makeDataset(s.container, u.id, items(6))).datasetId;
    const ev = (await makeEval(s.container, u.id)).evalVersionId;
    const tooBig = await schedule(s.baseUrl, u.keys.owner, big, { eval_version_id: ev });
    expect(tooBig.status).toBe(422);
    expect(tooBig.body).toEqual({ error: expect.stringMatching(/6 items, more than the 5 allowed/) });
    const keys = [u.keys.owner, u.keys.member, u.keys.owner];
    for (const k of keys) expect((await schedule(s.baseUrl, k, ds, { eval_version_id: ev })).status).toBe(202);
    const capped = await schedule(s.baseUrl, u.keys.member, ds, { eval_version_id: ev });
    expect(capped.status).toBe(429);
    expect(capped.retryAfter).toBe('10');
    expect(capped.body).toEqual({ error: expect.stringMatching(/already has 3 pending or running runs/) });
  });
});

describe('fair scheduling', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: { CHUNK_SIZE: '20', WORKER_CONCURRENCY: '1', EVALGATE_FAULT: 'chunk-delay-ms=30' } });
  });
  afterAll(async () => s?.close());

  it('a small run of another tenant finishes while a huge run is still going', async () => {
    const big = await makeTenant(s.container, 'big');
    const small = await makeTenant(s.container, 'small');
    const bigDs = (await makeDataset(s.container, big.id, items(3_000))).datasetId;
    const bigEv = (await makeEval(s.container, big.id)).evalVersionId;
    const smallDs = (await makeDataset(s.container, small.id, items(40))).datasetId;
    const smallEv = (await makeEval(s.container, small.id)).evalVersionId;
    const bigRun = (await schedule(s.baseUrl, big.keys.member, bigDs, { eval_version_id: bigEv })).body.id as string;
    await waitFor(async () => (await getRun(s.baseUrl, big.keys.member, bigRun)).completed_count > 0, { what: 'big run under way' });
    const smallRun = (await schedule(s.baseUrl, small.keys.member, smallDs, { eval_version_id: smallEv })).body.id as string;
    const smallDone = await waitForRunEnd(s.baseUrl, small.keys.member, smallRun, 60_000);
    expect(smallDone.status).toBe('completed');
    const bigThen = await getRun(s.baseUrl, big.keys.member, bigRun);
    // 150 chunks queued ahead of it in a FIFO; with chunk priorities the small run's 2 chunks jump the line
    expect(bigThen.status).toBe('running');
    expect(bigThen.completed_count).toBeLessThan(1_500);
    await waitForRunEnd(s.baseUrl, big.keys.member, bigRun, 120_000);
    await assertCountersExact(s.container.orm.em.fork(), bigRun);
  }, 150_000);
});
