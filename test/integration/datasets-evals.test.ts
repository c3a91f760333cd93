/**
 * Datasets, evals and results over REST and tRPC: every operation, cursors,
 * version snapshots, copy-free storage (counted in rows), size limits, the
 * NDJSON upload and its bad lines, roles and tenant isolation.
 */
import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordResults } from '../../domain/eval-runs/run-lifecycle.ts';
import type { AppRouter } from '../../routers/_app.ts';
import { sql } from '../../domain/shared/sql.ts';
import { assertCountersExact, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, waitForRunEnd } from '../helpers/runs.ts';
import { deletionsLeft } from '../helpers/deletions.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

let s: Stack;
let a: TenantFixture;
let b: TenantFixture;

const trpc = (key: string) =>
  createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${s.baseUrl}/trpc`, headers: { authorization: `Bearer ${key}` } })] });

type Json = Record<string, unknown>;
const post = (path: string, key: string, body?: unknown) => api<Json>(s.baseUrl, 'POST', path, key, body);
const get = (path: string, key: string) => api<Json>(s.baseUrl, 'GET', path, key);

async function upload(datasetId: string, key: string, lines: string[] | AsyncIterable<string>, contentType = 'application/x-ndjson') {
  const body =
    Array.isArray(lines)
      ? lines.join('\n')
      : new ReadableStream<Uint8Array>({
          async start(controller) {
            const enc = new TextEncoder();
            for await (const l of lines) controller.enqueue(enc.encode(`${l}\n`));
            controller.close();
          },
        });
  const res = await fetch(`${s.baseUrl}/v1/datasets/${datasetId}/items/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': contentType },
    body,
    duplex: 'half',
  } as RequestInit);
  return { status: res.status, body: (await res.json()) as Json };
}

beforeAll(async () => {
  s = await startStack({ workers: true, env: { CHUNK_SIZE: '200', MAX_ITEMS_PER_REQUEST: '500', MAX_ITEM_BYTES: '4096' } });
  a = await makeTenant(s.container, 'a');
  b = await makeTenant(s.container, 'b');
});
afterAll(async () => s?.close());

describe('datasets', () => {
  it('create, get, add items, delete items: each change is a new version and 201s over REST', async () => {
    const created = await post('/v1/datasets', a.keys.member, { name: 'qa', description: 'questions' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenant_id: a.id, name: 'qa', description: 'questions', latest_version: 1 });
    expect(Object.keys(created.body).sort()).toEqual(['created_at', 'description', 'id', 'latest_version', 'name', 'tenant_id', 'updated_at']);
    const id = created.body.id as string;

    const v2 = await post(`/v1/datasets/${id}/items`, a.keys.member, {
      items: [{ input: 'q1', expected_output: 'a1', output: 'a1' }, { input: { q: 2 }, expected_output: [2], metadata: { tag: 'x' } }, { input: 3 }],
    });
    expect(v2.status).toBe(201);
    expect(v2.body).toMatchObject({ dataset_id: id, version: 2, item_count: 3 });
    expect(Object.keys(v2.body).sort()).toEqual(['created_at', 'dataset_id', 'id', 'item_count', 'version']);

    const listed = await get(`/v1/datasets/${id}/items`, a.keys.viewer);
    expect(listed.status).toBe(200);
    const data = listed.body.data as Json[];
    expect(data.map((d) => d.input)).toEqual(['q1', { q: 2 }, 3]);
    expect(data[1]).toMatchObject({ expected_output: [2], output: null, metadata: { tag: 'x' } });
    expect(listed.body.next_cursor).toBeNull();

    const v3 = await post(`/v1/datasets/${id}/items/delete`, a.keys.member, { item_ids: [data[0]?.id] });
    expect(v3.status).toBe(201);
    expect(v3.body).toMatchObject({ version: 3, item_count: 2 });
    expect(((await get(`/v1/datasets/${id}/items`, a.keys.viewer)).body.data as Json[]).map((d) => d.input)).toEqual([{ q: 2 }, 3]);
    // version 2 still holds the deleted item
    expect(((await get(`/v1/datasets/${id}/items?version=2`, a.keys.viewer)).body.data as Json[]).length).toBe(3);
    // deleting it again: it is not in the latest version
    const again = await post(`/v1/datasets/${id}/items/delete`, a.keys.member, { item_ids: [data[0]?.id] });
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ error: expect.stringMatching(/not in the latest version/) });
    expect((await get(`/v1/datasets/${id}/items?version=9`, a.keys.viewer)).status).toBe(404);

    const got = await get(`/v1/datasets/${id}`, a.keys.viewer);
    expect(got.body).toMatchObject({ id, latest_version: 3 });
    const versions = await get(`/v1/datasets/${id}/versions`, a.keys.viewer);
    expect((versions.body.data as Json[]).map((v) => [v.version, v.item_count])).toEqual([[3, 2], [2, 3], [1, 0]]);
  });

  it('the same operations over tRPC', async () => {
    const c = trpc(a.keys.member);
    const ds = await c.createDataset.mutate({ name: 'rpc' });
    expect(ds.latest_version).toBe(1);
    const v = await c.addDatasetItems.mutate({ id: ds.id, items: [{ input: 'x', expected_output: 'x', output: 'x' }] });
    expect(v.item_count).toBe(1);
    const items = await c.listDatasetItems.query({ id: ds.id });
    const v3 = await c.deleteDatasetItems.mutate({ id: ds.id, item_ids: [items.data[0]!.id] });
    expect(v3).toMatchObject({ version: 3, item_count: 0 });
    expect((await c.getDataset.query({ id: ds.id })).latest_version).toBe(3);
    expect((await c.listDatasetVersions.query({ id: ds.id })).data).toHaveLength(3);
    expect((await c.listDatasets.query({ limit: 1000 })).data.map((d) => d.id)).toContain(ds.id);
  });

  it('cursors walk every row exactly once, newest first for datasets and in insertion order for items', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await post('/v1/datasets', b.keys.member, { name: `d${i}` })).body.id as string);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: Json } = await get(`/v1/datasets?limit=3${cursor ? `&cursor=${cursor}` : ''}`, b.keys.viewer);
      expect(r.status).toBe(200);
      seen.push(...(r.body.data as Json[]).map((d) => d.id as string));
      cursor = r.body.next_cursor as string | null;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    const ds = ids[0] as string;
    for (let i = 0; i < 3; i++) {
      await post(`/v1/datasets/${ds}/items`, b.keys.member, { items: Array.from({ length: 400 }, (_, j) => ({ input: i * 400 + j })) });
    }
    const inputs: number[] = [];
    cursor = null;
    let pages = 0;
    do {
      const r: { status: number; body: Json } = await get(`/v1/datasets/${ds}/items?limit=77${cursor ? `&cursor=${cursor}` : ''}`, b.keys.viewer);
      inputs.push(...(r.body.data as Json[]).map((d) => d.input as number));
      cursor = r.body.next_cursor as string | null;
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil(1200 / 77));
    expect(inputs).toEqual(Array.from({ length: 1200 }, (_, i) => i));

    const bad = await get(`/v1/datasets?cursor=garbage`, b.keys.viewer);
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: expect.stringMatching(/invalid cursor/) });
    expect((await get(`/v1/datasets?limit=0`, b.keys.viewer)).status).toBe(400);
    expect((await get(`/v1/datasets?limit=1001`, b.keys.viewer)).status).toBe(400);
  });

  it('never copies unchanged items: one more item is one more row', async () => {
    const ds = (await post('/v1/datasets', a.keys.member, { name: 'big' })).body.id as string;
    const N = 20_000;
    async function* lines() {
      for (let i = 0; i < N; i++) yield JSON.stringify({ input: `q${i}`, expected_output: `a${i}`, output: `a${i}` });
    }
    const up = await upload(ds, a.keys.member, lines());
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({ version: 2, item_count: N });
    const rows = async () =>
      (await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from dataset_items where dataset_id = ?', [ds]))[0]?.n;
    expect(await rows()).toBe(N);
    const v3 = await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: [{ input: 'one more' }] });
    expect(v3.body).toMatchObject({ version: 3, item_count: N + 1 });
    expect(await rows()).toBe(N + 1);
    const first = ((await get(`/v1/datasets/${ds}/items?limit=2`, a.keys.viewer)).body.data as Json[]).map((d) => d.id);
    const v4 = await post(`/v1/datasets/${ds}/items/delete`, a.keys.member, { item_ids: first });
    expect(v4.body).toMatchObject({ version: 4, item_count: N - 1 });
    expect(await rows()).toBe(N + 1); // deleting closes rows, it copies none
  });

  it('the NDJSON upload reports bad lines by number and stores nothing', async () => {
    const ds = (await post('/v1/datasets', a.keys.member, { name: 'bad' })).body.id as string;
    const r = await upload(ds, a.keys.member, [
      JSON.stringify({ input: 'ok' }),
      '{"input": ',
      JSON.stringify({ expected_output: 'no input' }),
      '',
      JSON.stringify({ input: 'x'.repeat(5000) }),
      JSON.stringify({ input: 'fine', metadata: 'not an object' }),
      JSON.stringify({ input: 'ok too' }),
    ]);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/4 bad line\(s\), nothing stored/);
    expect(r.body.error).toMatch(/line 2: not valid JSON/);
    expect(r.body.error).toMatch(/line 3: input/);
    expect(r.body.error).toMatch(/line 5: longer than 4096 bytes/);
    expect(r.body.error).toMatch(/line 6: metadata/);
    expect((await get(`/v1/datasets/${ds}`, a.keys.viewer)).body.latest_version).toBe(1);
    const [rows] = await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from dataset_items where dataset_id = ?', [ds]);
    expect(rows?.n).toBe(0);
    expect((await upload(ds, a.keys.member, [''])).status).toBe(400);
    expect((await upload(ds, a.keys.member, ['{"input":1}'], 'text/csv')).status).toBe(400);
    expect((await upload(ds, a.keys.viewer, ['{"input":1}'])).status).toBe(403);
    expect((await upload(ds, b.keys.member, ['{"input":1}'])).status).toBe(404);
    expect((await upload('nope', a.keys.member, ['{"input":1}'])).status).toBe(400);
    const ok = await upload(ds, a.keys.member, ['{"input":1}', '{"input":2}', '']);
    expect(ok).toMatchObject({ status: 201, body: { version: 2, item_count: 2 } });
  });

  it('answers 413 { error } for too many items, too large an item and too large a body', async () => {
    const ds = (await post('/v1/datasets', a.keys.member, { name: 'limits' })).body.id as string;
    const many = await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: Array.from({ length: 501 }, (_, i) => ({ input: i })) });
    expect(many.status).toBe(413);
    expect(many.body).toEqual({ error: expect.stringMatching(/at most 500 items/) });
    const big = await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: [{ input: 'x'.repeat(5000) }] });
    expect(big.status).toBe(413);
    expect(big.body).toEqual({ error: expect.stringMatching(/items\[0\] is \d+ bytes/) });
    const huge = await fetch(`${s.baseUrl}/v1/datasets/${ds}/items`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.keys.member}`, 'content-type': 'application/json' },
      body: JSON.stringify({ items: [{ input: 'y'.repeat(11 * 1024 * 1024) }] }),
    });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toEqual({ error: expect.stringMatching(/larger than/) });
    expect((await get(`/v1/datasets/${ds}`, a.keys.viewer)).body.latest_version).toBe(1);
  });
});

describe('evals', () => {
  it('create, version, get and list over REST; bad configs are 400 naming the field', async () => {
    const created = await post('/v1/evals', a.keys.member, { name: 'exact', evaluator: { type: 'exact_match', case_sensitive: false } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenant_id: a.id, name: 'exact', latest_version: { version: 1, evaluator: { type: 'exact_match', case_sensitive: false } } });
    const id = created.body.id as string;
    const v2 = await post(`/v1/evals/${id}/versions`, a.keys.member, { evaluator: { type: 'regex', pattern: '^a+$' } });
    expect(v2.status).toBe(201);
    expect(v2.body).toMatchObject({ eval_id: id, version: 2, evaluator: { type: 'regex', pattern: '^a+$' } });
    expect((await get(`/v1/evals/${id}`, a.keys.viewer)).body).toMatchObject({ latest_version: { version: 2 } });
    expect(((await get('/v1/evals', a.keys.viewer)).body.data as Json[]).map((e) => e.id)).toContain(id);

    const cases: [unknown, RegExp][] = [
      [{ type: 'nope' }, /evaluator\.type/],
      [{ type: 'regex' }, /evaluator\.pattern/],
      [{ type: 'regex', pattern: '(' }, /evaluator\.pattern/],
      [{ type: 'exact_match', bogus: 1 }, /bogus/],
      [{ type: 'levenshtein', threshold: 2 }, /evaluator\.threshold/],
      [{ type: 'json_schema', schema: { type: 'wat' } }, /evaluator\.schema/],
    ];
    for (const [evaluator, message] of cases) {
      const r = await post('/v1/evals', a.keys.member, { name: 'bad', evaluator });
      expect(r.status, JSON.stringify(evaluator)).toBe(400);
      expect(r.body).toEqual({ error: expect.stringMatching(message) });
    }
    expect((await post(`/v1/evals/${id}/versions`, b.keys.member, { evaluator: { type: 'exact_match' } })).status).toBe(404);
  });

  it('the same over tRPC', async () => {
    const c = trpc(a.keys.owner);
    const e = await c.createEval.mutate({ name: 'rpc', evaluator: { type: 'contains', value: 'x' } });
    const v = await c.createEvalVersion.mutate({ id: e.id, evaluator: { type: 'icontains', value: 'Y' } });
    expect(v.version).toBe(2);
    expect((await c.getEval.query({ id: e.id })).latest_version.evaluator).toMatchObject({ type: 'icontains' });
    expect((await c.listEvals.query({})).data.length).toBeGreaterThan(0);
  });
});

describe('runs and results', () => {
  let ds: string;
  let evalVersion: string;
  let run1: Json;
  let run2: Json;
  beforeAll(async () => {
    ds = (await post('/v1/datasets', a.keys.member, { name: 'graded' })).body.id as string;
    // 300 items: i % 3 == 0 fail, i % 10 == 7 error (not a number), the rest pass
    const items = Array.from({ length: 300 }, (_, i) => ({ input: i, expected_output: 10, output: i % 10 === 7 ? 'NaN!' : i % 3 === 0 ? 99 : 10 }));
    await post(`/v1/datasets/${ds}/items`, a.keys.member, { items });
    evalVersion = ((await post('/v1/evals', a.keys.member, { name: 'num', evaluator: { type: 'numeric_diff' } })).body.latest_version as Json).id as string;
    const sched = await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: evalVersion });
    run1 = (await waitForRunEnd(s.baseUrl, a.keys.member, sched.body.id as string)) as unknown as Json;
  });

  it('run 1 counts add up', async () => {
    expect(run1).toMatchObject({ status: 'completed', item_count: 300, completed_count: 300, error_count: 30 });
    await assertCountersExact(s.container.orm.em.fork(), run1.id as string);
  });

  it('listEvalRunItems filters by status and walks with a cursor', async () => {
    const errors = await get(`/v1/eval-runs/${run1.id as string}/items?status=error&limit=1000`, a.keys.viewer);
    expect(errors.status).toBe(200);
    const data = errors.body.data as Json[];
    expect(data).toHaveLength(30);
    expect(data.every((d) => d.status === 'error' && d.score === null && typeof d.error === 'string' && d.output === 'NaN!')).toBe(true);
    expect(Object.keys(data[0] as Json).sort()).toEqual(
      ['attempts', 'error', 'expected_output', 'input', 'item_id', 'latency_ms', 'output', 'passed', 'reason', 'score', 'status', 'prompt_tokens', 'completion_tokens', 'cost_usd', 'sample', 'scores', 'repetitions', 'passed_repetitions', 'score_sd'].sort(),
    );
    expect((data[0] as Json).sample).toBeNull(); // a run over the stored outputs generated nothing
    expect((data[0] as Json).scores).toBeNull(); // one evaluator: no per-criterion outcomes
    const all: Json[] = [];
    let cursor: string | null = null;
    do {
      const r: { body: Json } = await get(`/v1/eval-runs/${run1.id as string}/items?limit=64${cursor ? `&cursor=${cursor}` : ''}`, a.keys.viewer);
      all.push(...(r.body.data as Json[]));
      cursor = r.body.next_cursor as string | null;
    } while (cursor);
    expect(all).toHaveLength(300);
    expect(new Set(all.map((d) => d.item_id)).size).toBe(300);
    expect(all.filter((d) => d.status === 'passed')).toHaveLength(run1.passed_count as number);
    const rpc = await trpc(a.keys.viewer).listEvalRunItems.query({ id: run1.id as string, status: 'failed' });
    expect(rpc.data.every((d) => d.status === 'failed')).toBe(true);
  });

  it('a run of version N is unaffected by version N+1; listEvalRuns is newest first and filters by status', async () => {
    await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: [{ input: 'new', expected_output: 1, output: 1 }] });
    const sched = await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: evalVersion });
    run2 = (await waitForRunEnd(s.baseUrl, a.keys.member, sched.body.id as string)) as unknown as Json;
    expect(run2.item_count).toBe(301);
    expect((await get(`/v1/eval-runs/${run1.id as string}`, a.keys.viewer)).body).toMatchObject({ item_count: 300, completed_count: 300 });
    const runs = await get(`/v1/datasets/${ds}/runs`, a.keys.viewer);
    expect((runs.body.data as Json[]).map((r) => r.id)).toEqual([run2.id, run1.id]);
    expect(((await get(`/v1/datasets/${ds}/runs?status=failed`, a.keys.viewer)).body.data as Json[])).toEqual([]);
    expect(((await get(`/v1/datasets/${ds}/runs?limit=1`, a.keys.viewer)).body.next_cursor)).toEqual(expect.any(String));
    expect((await trpc(a.keys.viewer).listEvalRuns.query({ id: ds, status: 'completed' })).data).toHaveLength(2);
  });

  it('compare, cancel, retry and deleteDataset over tRPC', async () => {
    const viewer = trpc(a.keys.viewer);
    const cmp = await viewer.compareEvalRuns.query({ base: run1.id as string, head: run2.id as string, limit: 10 });
    expect(cmp.summary.unchanged).toBe(270);
    expect(cmp.data).toHaveLength(10);
    expect(cmp.next_cursor).toEqual(expect.any(String));
    const next = await viewer.compareEvalRuns.query({ base: run1.id as string, head: run2.id as string, limit: 10, cursor: cmp.next_cursor as string });
    expect((next.data[0]?.item_id ?? '') > (cmp.data[9]?.item_id ?? 'z')).toBe(true);
    const member = trpc(a.keys.member);
    const retried = await member.retryEvalRun.mutate({ id: run1.id as string });
    expect(retried).toMatchObject({ status: 'running', error_count: 0, completed_count: 270 });
    const again = await waitForRunEnd(s.baseUrl, a.keys.member, run1.id as string);
    expect(again).toMatchObject({ status: 'completed', error_count: 30, completed_count: 300 });
    await expect(member.cancelEvalRun.mutate({ id: run1.id as string })).rejects.toMatchObject({ data: { code: 'CONFLICT' } });
    const owner = trpc(a.keys.owner);
    const tmp = await owner.createDataset.mutate({ name: 'tmp' });
    await expect(member.deleteDataset.mutate({ id: tmp.id })).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
    await owner.deleteDataset.mutate({ id: tmp.id });
    await expect(owner.getDataset.query({ id: tmp.id })).rejects.toMatchObject({ data: { code: 'NOT_FOUND' } });
  });

  it('compareEvalRuns counts improved, regressed and unchanged over the items both runs scored', async () => {
    const r = await get(`/v1/eval-runs/compare?base=${run1.id as string}&head=${run2.id as string}&limit=1000`, a.keys.viewer);
    expect(r.status).toBe(200);
    expect(r.body.summary).toEqual({ improved: 0, regressed: 0, unchanged: 270, not_comparable: 30, only_in_base: 0, only_in_head: 1 });
    expect((r.body.data as Json[]).length).toBe(300);
    const first = (r.body.data as Json[])[0] as Json;
    expect(Object.keys(first).sort()).toEqual(['base_score', 'base_status', 'change', 'delta', 'head_score', 'head_status', 'item_id']);
    // a retry of the errors changes nothing (deterministic), so compare stays; cross-tenant is 404
    expect((await get(`/v1/eval-runs/compare?base=${run1.id as string}&head=${run2.id as string}`, b.keys.viewer)).status).toBe(404);
    expect((await get(`/v1/eval-runs/compare?base=${run1.id as string}`, a.keys.viewer)).status).toBe(400);
  });
});

describe('roles and tenants', () => {
  it('viewers read but cannot write; members cannot delete datasets; owners can, except while a run is active', async () => {
    const viewerWrites = [
      await post('/v1/datasets', a.keys.viewer, { name: 'x' }),
      await post('/v1/evals', a.keys.viewer, { name: 'x', evaluator: { type: 'exact_match' } }),
    ];
    for (const r of viewerWrites) expect(r.status).toBe(403);
    const ds = (await post('/v1/datasets', a.keys.member, { name: 'doomed' })).body.id as string;
    expect((await post(`/v1/datasets/${ds}/items`, a.keys.viewer, { items: [{ input: 1 }] })).status).toBe(403);
    expect((await post(`/v1/datasets/${ds}/items/delete`, a.keys.viewer, { item_ids: [ds] })).status).toBe(403);
    expect((await api(s.baseUrl, 'DELETE', `/v1/datasets/${ds}`, a.keys.member)).status).toBe(403);
    // a pending run blocks the delete
    const ev = ((await post('/v1/evals', a.keys.member, { name: 'e', evaluator: { type: 'exact_match' } })).body.latest_version as Json).id as string;
    await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: [{ input: 1, expected_output: 1, output: 1 }] });
    const run = await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: ev });
    // let the workers finish it first: a worker completing it after the update below would unblock the delete
    await waitForRunEnd(s.baseUrl, a.keys.member, run.body.id as string);
    await sql(s.container.orm.em.fork(), `update eval_runs set status = 'running' where id = ?`, [run.body.id]);
    const blocked = await api(s.baseUrl, 'DELETE', `/v1/datasets/${ds}`, a.keys.owner);
    expect(blocked.status).toBe(409);
    expect(blocked.body).toEqual({ error: expect.stringMatching(/running run/) });
    await sql(s.container.orm.em.fork(), `update eval_runs set status = 'completed' where id = ?`, [run.body.id]);
    expect((await api(s.baseUrl, 'DELETE', `/v1/datasets/${ds}`, b.keys.owner)).status).toBe(404);
    const deleted = await fetch(`${s.baseUrl}/v1/datasets/${ds}`, { method: 'DELETE', headers: { authorization: `Bearer ${a.keys.owner}` } });
    expect(deleted.status).toBe(204);
    expect((await get(`/v1/datasets/${ds}`, a.keys.owner)).status).toBe(404);
    expect((await get(`/v1/eval-runs/${run.body.id as string}`, a.keys.owner)).status).toBe(404);
  });

  it('deleting a dataset deletes its runs\' results and chunks, counted in rows, and no other dataset\'s', async () => {
    const ev = ((await post('/v1/evals', a.keys.member, { name: 'e', evaluator: { type: 'exact_match' } })).body.latest_version as Json).id as string;
    const withRuns = async (name: string, n: number, runs: number) => {
      const ds = (await post('/v1/datasets', a.keys.member, { name })).body.id as string;
      await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: Array.from({ length: n }, (_, i) => ({ input: i, expected_output: i, output: i % 3 ? i : -1 })) });
      const ids: string[] = [];
      for (let r = 0; r < runs; r++) {
        const run = await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: ev });
        expect(run.status).toBe(202);
        expect(await waitForRunEnd(s.baseUrl, a.keys.member, run.body.id as string)).toMatchObject({ status: 'completed', completed_count: n });
        ids.push(run.body.id as string);
      }
      return { ds, runs: ids };
    };
    const rows = async (runIds: string[]) =>
      (
        await sql<{ results: number; chunks: number; runs: number }>(
          s.container.orm.em.fork(),
          `select (select count(*)::int from eval_run_items where run_id in (select (jsonb_array_elements_text(?::jsonb))::uuid)) as results,
                  (select count(*)::int from eval_run_chunks where run_id in (select (jsonb_array_elements_text(?::jsonb))::uuid)) as chunks,
                  (select count(*)::int from eval_runs where id in (select (jsonb_array_elements_text(?::jsonb))::uuid)) as runs`,
          [JSON.stringify(runIds), JSON.stringify(runIds), JSON.stringify(runIds)],
        )
      )[0];
    const doomed = await withRuns('doomed-with-results', 450, 2); // 3 chunks of 200 per run
    const kept = await withRuns('kept', 250, 1);
    expect(await rows(doomed.runs)).toEqual({ results: 900, chunks: 6, runs: 2 });
    expect(await rows(kept.runs)).toEqual({ results: 250, chunks: 2, runs: 1 });
    const totalBefore = (await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from eval_run_items'))[0]?.n ?? 0;

    expect((await api(s.baseUrl, 'DELETE', `/v1/datasets/${doomed.ds}`, a.keys.owner)).status).toBe(204);
    // the runs go at once; their results and chunks in the background (run-deletion.service.ts)
    expect((await rows(doomed.runs))?.runs).toBe(0);
    await waitFor(async () => (await deletionsLeft(s)) === 0, { what: 'the background deletion' });
    expect(await rows(doomed.runs)).toEqual({ results: 0, chunks: 0, runs: 0 });
    expect(await rows(kept.runs)).toEqual({ results: 250, chunks: 2, runs: 1 });
    // nowhere an orphan: every result still in the table belongs to a run that exists
    const [all] = await sql<{ n: number; orphans: number }>(
      s.container.orm.em.fork(),
      'select count(*)::int as n, (count(*) filter (where not exists (select 1 from eval_runs r where r.id = i.run_id)))::int as orphans from eval_run_items i',
    );
    expect(all).toEqual({ n: totalBefore - 900, orphans: 0 });
    await assertCountersExact(s.container.orm.em.fork(), kept.runs[0] as string);
  });

  it('a dataset delete waits for a result still being recorded, and a recording after the delete stores nothing', async () => {
    const ev = ((await post('/v1/evals', a.keys.member, { name: 'e', evaluator: { type: 'exact_match' } })).body.latest_version as Json).id as string;
    const ds = (await post('/v1/datasets', a.keys.member, { name: 'raced' })).body.id as string;
    await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: [{ input: 1, expected_output: 1, output: 1 }] });
    const runId = (await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: ev })).body.id as string;
    expect(await waitForRunEnd(s.baseUrl, a.keys.member, runId)).toMatchObject({ status: 'completed', completed_count: 1 });
    const results = async () =>
      (await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from eval_run_items where run_id = ?', [runId]))[0]?.n;
    // What a chunk statement that saw the run running does before it commits (recordResults):
    // it holds the run FOR KEY SHARE and inserts its results. The delete must wait for it, then take them too.
    let commit!: () => void;
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const recording = s.container.orm.em.fork().transactional(async (tx) => {
      await sql(tx, `select 1 from eval_runs where id = ? for key share`, [runId]);
      await sql(
        tx,
        `insert into eval_run_items (run_id, item_id, tenant_id, status, score, passed, attempts, latency_ms, created_at)
         values (?, gen_random_uuid(), ?, 'passed', 1, true, 1, 0, now())`,
        [runId, a.id],
      );
      locked();
      await new Promise<void>((r) => (commit = r));
    });
    await isLocked;
    let deleted = false;
    const deleting = api(s.baseUrl, 'DELETE', `/v1/datasets/${ds}`, a.keys.owner).then((r) => {
      deleted = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(deleted).toBe(false);
    commit();
    await recording;
    expect((await deleting).status).toBe(204);
    await waitFor(async () => (await deletionsLeft(s)) === 0, { what: 'the background deletion' });
    expect(await results()).toBe(0);
    // and a chunk that records for the deleted run finds no running run: nothing stored, no counters to move
    const out = await recordResults(s.container.orm.em.fork(), { run_id: runId, tenant_id: a.id }, 0, 1, [
      { item_id: '00000000-0000-7000-8000-000000000001', status: 'passed', score: 1, passed: true, reason: null, error: null, latency_ms: 1 },
    ], true);
    expect(out).toBeNull();
    expect(await results()).toBe(0);
  });

  it('tenant B gets 404 for every one of tenant A\'s ids, and never A\'s data', async () => {
    const ds = (await post('/v1/datasets', a.keys.member, { name: 'secret-a' })).body.id as string;
    await post(`/v1/datasets/${ds}/items`, a.keys.member, { items: [{ input: 'secret-input', expected_output: 1, output: 1 }] });
    const ev = (await post('/v1/evals', a.keys.member, { name: 'secret-eval', evaluator: { type: 'exact_match' } })).body as Json;
    const run = (await post(`/v1/datasets/${ds}/runs`, a.keys.member, { eval_version_id: (ev.latest_version as Json).id })).body as Json;
    await waitForRunEnd(s.baseUrl, a.keys.member, run.id as string);
    const item = ((await get(`/v1/datasets/${ds}/items`, a.keys.member)).body.data as Json[])[0] as Json;
    const calls: [string, string, unknown?][] = [
      ['GET', `/v1/datasets/${ds}`],
      ['GET', `/v1/datasets/${ds}/items`],
      ['GET', `/v1/datasets/${ds}/versions`],
      ['GET', `/v1/datasets/${ds}/runs`],
      ['POST', `/v1/datasets/${ds}/items`, { items: [{ input: 1 }] }],
      ['POST', `/v1/datasets/${ds}/items/delete`, { item_ids: [item.id] }],
      ['POST', `/v1/datasets/${ds}/runs`, { eval_version_id: (ev.latest_version as Json).id }],
      ['DELETE', `/v1/datasets/${ds}`],
      ['GET', `/v1/evals/${ev.id as string}`],
      ['POST', `/v1/evals/${ev.id as string}/versions`, { evaluator: { type: 'exact_match' } }],
      ['GET', `/v1/eval-runs/${run.id as string}`],
      ['DELETE', `/v1/eval-runs/${run.id as string}`],
      ['GET', `/v1/eval-runs/${run.id as string}/items`],
      ['POST', `/v1/eval-runs/${run.id as string}/cancel`],
      ['POST', `/v1/eval-runs/${run.id as string}/retry`],
      ['GET', `/v1/eval-runs/compare?base=${run.id as string}&head=${run.id as string}`],
    ];
    for (const [method, path, body] of calls) {
      const r = await api<Json>(s.baseUrl, method, path, b.keys.owner, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(JSON.stringify(r.body)).not.toMatch(/secret/);
    }
    expect(((await get('/v1/datasets?limit=1000', b.keys.owner)).body.data as Json[]).some((d) => d.id === ds)).toBe(false);
    expect(((await get('/v1/evals?limit=1000', b.keys.owner)).body.data as Json[]).some((e) => e.id === ev.id)).toBe(false);
  });
});
