/**
 * A run's name and metadata: accepted on schedule over REST and tRPC,
 * returned with the run, filterable in listEvalRuns (exact name, metadata
 * containment), part of what an Idempotency-Key's replay must match, and
 * refused with { error } when too large or malformed.
 */
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/_app.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let stack: Stack;
let a: TenantFixture;
let b: TenantFixture;
let ds: { datasetId: string };
let ev: { evalVersionId: string };

async function rest(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const schedule = (body: Record<string, unknown>, headers?: Record<string, string>) =>
  rest('POST', `/v1/datasets/${ds.datasetId}/runs`, a.keys.member, { eval_version_id: ev.evalVersionId, ...body }, headers);
const list = async (query: string) => {
  const res = await rest('GET', `/v1/datasets/${ds.datasetId}/runs?${query}`, a.keys.member);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body.data as { id: string; name: string | null }[]).map((r) => r.id);
};

beforeAll(async () => {
  stack = await startStack({ env: { MAX_ACTIVE_RUNS_PER_TENANT: '1000' } });
  a = await makeTenant(stack.container, 'labels a', 'org_labels_a');
  b = await makeTenant(stack.container, 'labels b', 'org_labels_b');
  ds = await makeDataset(stack.container, a.id, items(2));
  ev = await makeEval(stack.container, a.id);
});

afterAll(async () => {
  await stack?.close();
});

describe('run name and metadata', () => {
  it('are stored with the run and returned by schedule, get and list; without them both are null', async () => {
    const labelled = await schedule({ name: 'gpt-4o, prompt v2', metadata: { branch: 'main', commit: 'abc123', model: { id: 'gpt-4o' } } });
    expect(labelled.status).toBe(202);
    expect(labelled.body).toMatchObject({ name: 'gpt-4o, prompt v2', metadata: { branch: 'main', commit: 'abc123', model: { id: 'gpt-4o' } } });
    const got = await rest('GET', `/v1/eval-runs/${labelled.body.id as string}`, a.keys.viewer);
    expect(got.body).toEqual(labelled.body);

    const plain = await schedule({});
    expect(plain.status).toBe(202);
    expect(plain.body).toMatchObject({ name: null, metadata: null });
  });

  it('filter listEvalRuns by exact name and by metadata containment, combined with status and pagination', async () => {
    const m1 = (await schedule({ name: 'filter-model-1', metadata: { suite: 'filters', model: 'm1', tags: ['x', 'y'] } })).body.id as string;
    const m2 = (await schedule({ name: 'filter-model-2', metadata: { suite: 'filters', model: 'm2' } })).body.id as string;
    const m1b = (await schedule({ name: 'filter-model-1', metadata: { suite: 'filters', model: 'm1', tags: ['z'] } })).body.id as string;

    expect(await list('name=filter-model-1')).toEqual([m1b, m1]);
    expect(await list(`metadata=${encodeURIComponent('{"suite":"filters"}')}`)).toEqual([m1b, m2, m1]);
    expect(await list(`metadata=${encodeURIComponent('{"model":"m1","tags":["y"]}')}`)).toEqual([m1]);
    expect(await list(`name=filter-model-2&metadata=${encodeURIComponent('{"model":"m1"}')}`)).toEqual([]);
    expect(await list(`status=pending&name=filter-model-1&limit=1`)).toEqual([m1b]);

    const page1 = await rest('GET', `/v1/datasets/${ds.datasetId}/runs?name=filter-model-1&limit=1`, a.keys.member);
    const cursor = page1.body.next_cursor as string;
    expect(cursor).toEqual(expect.any(String));
    expect(await list(`name=filter-model-1&limit=1&cursor=${encodeURIComponent(cursor)}`)).toEqual([m1]);

    // the same over tRPC, typed
    const client = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `${stack.baseUrl}/trpc`, headers: () => ({ authorization: `Bearer ${a.keys.member}` }) })],
    });
    const page = await client.listEvalRuns.query({ id: ds.datasetId, metadata: '{"model":"m2"}' });
    expect(page.data.map((r) => r.id)).toEqual([m2]);
    expect(page.data[0]?.metadata).toEqual({ suite: 'filters', model: 'm2' });
  });

  it("another tenant's filter sees none of them", async () => {
    const res = await rest('GET', `/v1/datasets/${ds.datasetId}/runs?name=filter-model-1`, b.keys.member);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: expect.any(String) });
  });

  it('are part of what an Idempotency-Key replay must match', async () => {
    const key = { 'idempotency-key': `labels-${Date.now()}` };
    const first = await schedule({ name: 'idem', metadata: { n: 1 } }, key);
    expect(first.status).toBe(202);
    const replay = await schedule({ name: 'idem', metadata: { n: 1 } }, key);
    expect(replay.status).toBe(202);
    expect(replay.body).toEqual(first.body);
    const other = await schedule({ name: 'idem', metadata: { n: 2 } }, key);
    expect(other.status).toBe(422);
    expect(other.body).toEqual({ error: expect.stringMatching(/different request/) });
  });

  it('refuse oversized or malformed labels with 400 { error } on REST and tRPC, storing nothing', async () => {
    const before = (await list('limit=100')).length;
    const bad: Record<string, unknown>[] = [
      { name: '' },
      { name: 'x'.repeat(201) },
      { name: 42 },
      { metadata: 'not an object' },
      { metadata: ['a', 'b'] },
      { metadata: { big: 'x'.repeat(5_000) } },
      { metadata: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) },
      { metadata: { ['k'.repeat(101)]: 1 } },
    ];
    for (const body of bad) {
      const res = await schedule(body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body).toEqual({ error: expect.stringMatching(/name|metadata/) });
    }
    for (const query of ['metadata=not-json', `metadata=${encodeURIComponent('[1]')}`, `metadata=${encodeURIComponent('"text"')}`, `metadata=${'x'.repeat(4_097)}`, `name=${'x'.repeat(201)}`]) {
      const res = await rest('GET', `/v1/datasets/${ds.datasetId}/runs?${query}`, a.keys.member);
      expect(res.status, query.slice(0, 40)).toBe(400);
      expect(res.body).toEqual({ error: expect.stringMatching(/name|metadata/) });
    }
    const client = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `${stack.baseUrl}/trpc`, headers: () => ({ authorization: `Bearer ${a.keys.member}` }) })],
    });
    const err = await client.scheduleEvalRun.mutate({ id: ds.datasetId, eval_version_id: ev.evalVersionId, metadata: { big: 'x'.repeat(5_000) } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TRPCClientError);
    expect((err as TRPCClientError<AppRouter>).data?.httpStatus).toBe(400);
    expect((await list('limit=100')).length).toBe(before);
  });
});
