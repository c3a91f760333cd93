/**
 * Property-based hostile input (fast-check) at every REST route of the served
 * OpenAPI document and at every tRPC procedure (single and batch, queries by
 * GET `?input=`, mutations by POST): random and malicious bodies, headers,
 * paths, query strings, content types, huge arrays, huge and deeply nested
 * JSON, `__proto__` keys, bodies that stall. Never a 5xx, always
 * `{ "error": … }` for a 4xx (tRPC: its error shape, one per call of a
 * batch), always an answer within a bound, and the server is still healthy
 * afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appRouter } from '../../routers/_app.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { head, rawRequest } from '../helpers/raw-http.ts';
import { scheduleRun } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let t: TenantFixture;
let routes: { method: string; path: string }[];
const ids: Record<string, string> = {};

const ANSWER_BOUND_MS = 10_000;

beforeAll(async () => {
  // Short body timers, so the stalled bodies below are cut quickly (defaults are seconds, README: Limits).
  s = await startStack({ workers: true, env: { BODY_IDLE_TIMEOUT_MS: '500', REQUEST_TIMEOUT_MS: '2000', HEADERS_TIMEOUT_MS: '1000' } });
  t = await makeTenant(s.container);
  const ds = await makeDataset(s.container, t.id, items(3));
  const ev = await makeEval(s.container, t.id);
  const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
  Object.assign(ids, { dataset: ds.datasetId, eval: ev.evalId, run: run.id });
  const doc = (await (await fetch(`${s.baseUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })));
});
afterAll(async () => s?.close());

const deep = (n: number, leaf: unknown = 1): string => '['.repeat(n) + JSON.stringify(leaf) + ']'.repeat(n);
const nasty = fc.constantFrom(
  "' OR 1=1 --",
  '"; DROP TABLE eval_runs; --',
  '../../etc/passwd',
  '%00',
  '\u0000',
  '{{constructor.constructor("return process")()}}',
  '__proto__',
  'constructor',
  '\ud800',
  '😀'.repeat(1000),
  'A'.repeat(100_000),
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
);
const pathParam = fc.oneof(fc.uuid(), fc.string({ maxLength: 300 }), nasty, fc.constant(''));
const jsonBody = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.record({ eval_version_id: fc.oneof(fc.uuid(), nasty, fc.integer()), items: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 5 }), name: fc.oneof(nasty, fc.string()), __proto__: fc.jsonValue() }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 2000 }) },
  { weight: 1, arbitrary: fc.constantFrom(deep(100_000), JSON.stringify({ items: [{ input: JSON.parse(deep(200)) }] }), JSON.stringify({ evaluator: JSON.parse(deep(500)), name: 'x' }), '{"a":'.repeat(10_000), '\uFEFF{}', 'null', '[]', '""', 'true') },
);
const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-ndjson', 'application/xml', 'multipart/form-data; boundary=x', '', 'application/json; charset=latin1');
const authorization = fc.oneof(
  { weight: 6, arbitrary: fc.constant('good') },
  { weight: 1, arbitrary: fc.constantFrom('', 'Bearer', 'Bearer ', `Bearer tl_${'x'.repeat(43)}`, 'Bearer a.b.c', 'Basic Zm9vOmJhcg==', `Bearer ${'A'.repeat(8_000)}`) },
);
const query = fc.dictionary(fc.constantFrom('limit', 'cursor', 'status', 'version', 'base', 'head', 'x'), fc.oneof(fc.string({ maxLength: 50 }), nasty, fc.integer().map(String)), { maxKeys: 4 });

async function call(method: string, path: string, body: string | undefined, headers: Record<string, string>) {
  const res = await fetch(`${s.baseUrl}${path}`, { method, headers, body, signal: AbortSignal.timeout(ANSWER_BOUND_MS) });
  const text = await res.text();
  return { status: res.status, text };
}

function expectSane(r: { status: number; text: string }, what: string) {
  expect(r.status, `${what} → ${r.status} ${r.text.slice(0, 200)}`).toBeLessThan(500);
  if (r.status >= 400) {
    let body: unknown;
    expect(() => (body = JSON.parse(r.text)), `${what}: error body is JSON`).not.toThrow();
    expect(body, what).toEqual({ error: expect.any(String) });
    expect(r.text).not.toMatch(/node_modules|\.ts:\d+|at async/);
  }
}

/** Lone surrogates (a cut pair) replaced: encodeURIComponent throws on them. */
const wellFormed = (v: string) => v.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

/** A tRPC error: `{ error: { message, code, data } }`, one per call of a batch; never a stack. */
function expectSaneTrpc(r: { status: number; text: string }, what: string, batch: boolean) {
  expect(r.status, `${what} → ${r.status} ${r.text.slice(0, 200)}`).toBeLessThan(500);
  expect(r.text).not.toMatch(/node_modules|\.ts:\d+|at async/);
  if (r.status < 400 && r.status !== 207) return;
  let body: unknown;
  expect(() => (body = JSON.parse(r.text)), `${what}: error body is JSON`).not.toThrow();
  const shape = { error: { message: expect.any(String), code: expect.any(Number), data: expect.objectContaining({ httpStatus: expect.any(Number) }) } };
  if (batch && Array.isArray(body)) {
    for (const one of body as { error?: unknown }[]) if (one.error !== undefined) expect(one, what).toMatchObject(shape);
  } else expect(body, what).toMatchObject(shape);
}

describe('hostile input', () => {
  it('every REST route answers < 500 with { error } to random and malicious requests', async () => {
    for (const route of routes) {
      await fc.assert(
        fc.asyncProperty(pathParam, jsonBody, contentType, authorization, query, fc.boolean(), async (param, body, type, auth, q, realId) => {
          const id = realId ? (route.path.startsWith('/v1/evals') ? ids.eval : route.path.startsWith('/v1/eval-runs') ? ids.run : ids.dataset) : param;
          const qs = new URLSearchParams(q).toString();
          const path = route.path.replace('{id}', encodeURIComponent(id ?? '')) + (qs ? `?${qs}` : '');
          const headers: Record<string, string> = {};
          if (auth === 'good') headers.authorization = `Bearer ${t.keys.owner}`;
          else if (auth) headers.authorization = auth;
          const withBody = route.method !== 'GET' && route.method !== 'DELETE';
          if (withBody && type) headers['content-type'] = type;
          expectSane(await call(route.method, path, withBody ? body : undefined, headers), `${route.method} ${path.slice(0, 120)}`);
        }),
        { numRuns: 25, seed: 42 },
      );
    }
  });

  it('survives a body over the limit, 100,000 levels of nesting and a flood of headers', async () => {
    const headers = { authorization: `Bearer ${t.keys.owner}`, 'content-type': 'application/json' };
    expectSane(await call('POST', `/v1/datasets/${ids.dataset}/items`, `{"items":[{"input":"${'x'.repeat(12 * 1024 * 1024)}"}]}`, headers), 'huge');
    const fresh = (await (await fetch(`${s.baseUrl}/v1/datasets`, { method: 'POST', headers, body: '{"name":"deep"}' })).json()) as { id: string };
    const deepBody = await call('POST', `/v1/datasets/${fresh.id}/items`, `{"items":[{"input":${deep(5_000)}}]}`, headers);
    expect(deepBody.status).toBe(400);
    expect(deepBody.text).toMatch(/nested deeper than 128 levels/);
    const deepItem = await call('POST', `/v1/datasets/${fresh.id}/items`, `{"items":[{"input":${deep(100)}}]}`, headers);
    expect(deepItem.status).toBe(400);
    expect(deepItem.text).toMatch(/input: nested deeper than 64 levels/);
    const deepRpc = await call('POST', '/trpc/createDataset', `{"name":${deep(100_000)}}`, headers);
    expect(deepRpc.status).toBe(400);
    expectSane(await call('POST', `/v1/datasets/${fresh.id}/items`, `{"items":[{"input":1,"metadata":{"a":${deep(100_000)}}}]}`, headers), 'deep metadata');
    expectSane(await call('POST', '/v1/evals', `{"name":"deep","evaluator":${deep(100_000)}}`, headers), 'deep eval');
    expectSane(await call('POST', '/v1/evals', `{"name":"deep","evaluator":{"type":"exact_match","value":${deep(100_000)}}}`, headers), 'deep eval value');
    expectSane(await call('POST', `/v1/datasets/${ids.dataset}/runs`, deep(100_000), headers), 'deep schedule');
    const many: Record<string, string> = { ...headers };
    for (let i = 0; i < 80; i++) many[`x-junk-${i}`] = 'y'.repeat(100);
    expectSane(await call('GET', `/v1/datasets/${ids.dataset}`, undefined, many), 'many headers');
    expectSane(await call('GET', `/v1/eval-runs/${'%'.repeat(50)}`, undefined, headers), 'bad escapes');
    expectSane(await call('GET', `/v1/datasets?${'a=1&'.repeat(2000)}`, undefined, headers), 'long query');
  });

  it('every tRPC procedure, single and batch, answers < 500 in tRPC error shape to random and malicious input', async () => {
    const procedures = Object.entries(appRouter._def.procedures as Record<string, { _def: { type: string } }>)
      .filter(([, p]) => p._def.type !== 'subscription') // a valid subscription is an endless SSE stream
      .map(([name, p]) => ({ name, type: p._def.type }));
    expect(procedures.length).toBeGreaterThan(10);
    const hugeArray = `{"id":"${ids.dataset}","items":[${'0,'.repeat(500_000)}0]}`;
    const trpcInput = fc.oneof(
      { weight: 4, arbitrary: jsonBody },
      { weight: 1, arbitrary: fc.constantFrom(hugeArray, `{"id":"${ids.dataset}","items":[${'{"input":1},'.repeat(20_000)}{"input":1}]}`, '{"__proto__":{"admin":true},"name":"p"}', '{"constructor":{"prototype":{"x":1}}}', '{"\u005f_proto__":{"x":1}}') },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...procedures),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        trpcInput,
        authorization,
        fc.boolean(),
        async (proc, calls, batch, input, auth, realId) => {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (auth === 'good') headers.authorization = `Bearer ${t.keys.owner}`;
          else if (auth) headers.authorization = auth;
          const one = realId ? JSON.stringify({ id: ids.dataset }) : input;
          const paths = batch ? Array(calls).fill(proc.name).join(',') : proc.name;
          const body = batch ? `{${Array.from({ length: calls }, (_, i) => `"${i}":${one}`).join(',')}}` : one;
          const qs = batch ? '?batch=1' : '';
          const r =
            proc.type === 'query'
              ? // at most 2,000 UTF-16 units: encoded, under Node's 16 KiB of headers (above it, 431 before any route)
                await call('GET', `/trpc/${paths}${qs}${qs ? '&' : '?'}input=${encodeURIComponent(wellFormed(body.slice(0, 2_000)))}`, undefined, headers)
              : await call('POST', `/trpc/${paths}${qs}`, body, headers);
          expectSaneTrpc(r, `${proc.type} ${paths.slice(0, 80)} batch=${batch}`, batch);
        },
      ),
      { numRuns: 300, seed: 7 },
    );
  });

  it('tRPC: a batch over TRPC_MAX_BATCH, 100,000 levels of nesting, a body over the limit and stalled bodies', async () => {
    const headers = { authorization: `Bearer ${t.keys.owner}`, 'content-type': 'application/json' };
    const overBatch = await call('GET', `/trpc/${Array(51).fill('listDatasets').join(',')}?batch=1&input=%7B%7D`, undefined, headers);
    expect(overBatch.status).toBe(400);
    expect(overBatch.text).toMatch(/at most 50 calls/);
    expectSaneTrpc(overBatch, 'batch of 51', true);
    const inputs = encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: 50 }, (_, i) => [i, {}]))));
    const fullBatch = await call('GET', `/trpc/${Array(50).fill('listDatasets').join(',')}?batch=1&input=${inputs}`, undefined, headers);
    expect(fullBatch.status, 'a batch of 50 (650 characters of path) is served').toBe(200);
    const deepGet = await call('GET', `/trpc/listDatasets?input=${encodeURIComponent(deep(1_000))}`, undefined, headers);
    expect(deepGet.status).toBe(400);
    const deepPost = await call('POST', '/trpc/createDataset,createDataset?batch=1', `{"0":${deep(100_000)},"1":{"name":"x"}}`, headers);
    expect(deepPost.status).toBe(400);
    expectSaneTrpc(deepPost, 'deep batch', true);
    const huge = await call('POST', '/trpc/addDatasetItems', `{"id":"${ids.dataset}","items":[${'0,'.repeat(6 * 1024 * 1024)}0]}`, headers);
    expect(huge.status).toBe(413);
    expectSaneTrpc(huge, 'huge', false);
    const port = Number(new URL(s.baseUrl).port);
    for (const path of ['/trpc/createDataset', '/trpc/createDataset,createDataset?batch=1', '/trpc/addDatasetItems']) {
      const stalled = await rawRequest(port, { send: head('POST', path, { ...headers, 'content-length': 5_000 }, '{"0":{"na') });
      expect(stalled.status, `${path}: ${stalled.body}`).toBe(408);
      expect(stalled.closed).toBe(true);
    }
  });

  it('is still healthy and correct afterwards', async () => {
    expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.baseUrl}/readyz`)).status).toBe(200);
    // (the fuzzing may have deleted the fixtures: it had an owner key) — the API still works end to end
    const ds = await makeDataset(s.container, t.id, items(4));
    const ev = await makeEval(s.container, t.id);
    const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    expect(run.item_count).toBe(4);
  });
});
