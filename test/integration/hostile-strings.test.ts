/**
 * Strings PostgreSQL cannot store (U+0000 and lone UTF-16 surrogates; text and
 * jsonb both refuse them: unchecked, a 500) and tampered cursors,
 * as fast-check properties over REST and tRPC: every field that reaches the
 * database (names, descriptions, item keys and values at any depth, evaluator
 * config values, webhook URLs, NDJSON lines, query parameters) answers 400
 * naming the field, never a 5xx. The server is still healthy afterwards.
 */
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/_app.ts';
import { encodeCursor } from '../../domain/shared/pagination.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let t: TenantFixture;
const ids: Record<string, string> = {};
let otherListCursor: string;

beforeAll(async () => {
  s = await startStack({ workers: false, env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' } });
  t = await makeTenant(s.container);
  const ds = await makeDataset(s.container, t.id, items(3));
  await makeDataset(s.container, t.id, items(1));
  const ev = await makeEval(s.container, t.id);
  const run = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
  Object.assign(ids, { dataset: ds.datasetId, eval: ev.evalId, run: run.id });
  const page = await api<{ next_cursor: string }>(s.baseUrl, 'GET', '/v1/datasets?limit=1', t.keys.viewer);
  otherListCursor = page.body.next_cursor;
  expect(otherListCursor).toEqual(expect.any(String));
});
afterAll(async () => s?.close());

const RUNS = Number(process.env.HOSTILE_RUNS ?? 60);

/** A string with at least one character PostgreSQL refuses, somewhere in it. */
const poison = fc
  .tuple(fc.string({ maxLength: 20 }), fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff', 'a\u0000b\ud83d'), fc.string({ maxLength: 20 }))
  .map(([a, p, b]) => a + p + b);

/** `leaf` buried at a random depth in arrays and objects, as a value or as a key. */
const buried = (leaf: fc.Arbitrary<string>) =>
  fc
    .tuple(leaf, fc.array(fc.constantFrom('array', 'object', 'key'), { maxLength: 6 }))
    .map(([l, wraps]) => wraps.reduce<unknown>((v, w) => (w === 'array' ? [1, v] : w === 'object' ? { k: v, n: null } : { [l]: v }), l));

interface Case {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  ndjson?: string;
  /** the field the error must name */
  field: RegExp;
}

const restCase: fc.Arbitrary<Case> = fc.oneof(
  poison.map((p): Case => ({ method: 'POST', path: '/v1/datasets', body: { name: `n${p}` }, field: /^invalid input: name: must not contain/ })),
  poison.map((p): Case => ({ method: 'POST', path: '/v1/datasets', body: { name: 'ok', description: p }, field: /^invalid input: description: must not contain/ })),
  fc
    .tuple(buried(poison), fc.constantFrom('input', 'expected_output', 'output'))
    .map(([v, f]): Case => ({ method: 'POST', path: `/v1/datasets/${ids.dataset}/items`, body: { items: [{ input: 'fine' }, { input: 'x', [f]: v }] }, field: new RegExp(`^invalid input: items\\.1\\.${f}(\\.|: )`) })),
  fc.tuple(poison, fc.string({ maxLength: 5 })).map(([k, v]): Case => ({ method: 'POST', path: `/v1/datasets/${ids.dataset}/items`, body: { items: [{ input: 1, metadata: { [k]: v } }] }, field: /^invalid input: items\.0\.metadata\..*key must not contain/ })),
  buried(poison).map((v): Case => ({ method: 'POST', path: `/v1/datasets/${ids.dataset}/items/upload`, ndjson: `{"input":1}\n${JSON.stringify({ input: v })}\n`, field: /line 2: input(\.|: )/ })),
  poison.map((p): Case => ({ method: 'POST', path: '/v1/evals', body: { name: p, evaluator: { type: 'exact_match' } }, field: /^invalid input: name: must not contain/ })),
  fc
    .tuple(poison, fc.constantFrom('contains', 'exact_match', 'starts_with'))
    .map(([p, type]): Case => ({ method: 'POST', path: '/v1/evals', body: { name: 'e', evaluator: { type, value: p } }, field: /^invalid input: evaluator\.value: must not contain/ })),
  buried(poison).map((v): Case => ({ method: 'POST', path: `/v1/evals/${ids.eval}/versions`, body: { evaluator: { type: 'json_match', value: v, paths: ['$'] } }, field: /^invalid input: evaluator\.value/ })),
  poison.map((p): Case => ({ method: 'POST', path: `/v1/evals/${ids.eval}/versions`, body: { evaluator: { type: 'contains_any', values: ['a', `b${p}`] } }, field: /^invalid input: evaluator\.values\.1: must not contain/ })),
  poison.map((p): Case => ({ method: 'POST', path: '/v1/webhooks', body: { url: `https://hooks.example.com/${p}` }, field: /^invalid input: url: / })),
);

async function send(c: Case): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { authorization: `Bearer ${t.keys.owner}` };
  let body: string | undefined;
  if (c.ndjson !== undefined) {
    headers['content-type'] = 'application/x-ndjson';
    body = c.ndjson;
  } else if (c.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(c.body);
  }
  const res = await fetch(`${s.baseUrl}${c.path}`, { method: c.method, headers, body, signal: AbortSignal.timeout(20_000) });
  return { status: res.status, text: await res.text() };
}

function expect400Naming(r: { status: number; text: string }, field: RegExp, what: string) {
  expect(r.status, `${what} → ${r.status} ${r.text.slice(0, 300)}`).toBe(400);
  const body = JSON.parse(r.text) as unknown;
  expect(body, what).toEqual({ error: expect.stringMatching(field) });
}

describe('strings PostgreSQL cannot store', () => {
  it('REST: every field answers 400 naming it (never a 5xx)', async () => {
    await fc.assert(
      fc.asyncProperty(restCase, async (c) => {
        expect400Naming(await send(c), c.field, `${c.method} ${c.path} ${JSON.stringify(c.body ?? c.ndjson).slice(0, 200)}`);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('tRPC: the same inputs answer BAD_REQUEST naming the field', async () => {
    const client = createTRPCClient<AppRouter>({ links: [httpLink({ url: `${s.baseUrl}/trpc`, headers: { authorization: `Bearer ${t.keys.owner}` } })] });
    const calls: fc.Arbitrary<{ call: () => Promise<unknown>; field: RegExp }> = fc.oneof(
      poison.map((p) => ({ call: () => client.createDataset.mutate({ name: p }), field: /name: must not contain/ })),
      poison.map((p) => ({ call: () => client.createDataset.mutate({ name: 'x', description: p }), field: /description: must not contain/ })),
      buried(poison).map((v) => ({ call: () => client.addDatasetItems.mutate({ id: ids.dataset!, items: [{ input: v }] }), field: /items\.0\.input/ })),
      buried(poison).map((v) => ({ call: () => client.addDatasetItems.mutate({ id: ids.dataset!, items: [{ input: 1, metadata: { m: v } }] }), field: /items\.0\.metadata\.m/ })),
      poison.map((p) => ({ call: () => client.createEval.mutate({ name: p, evaluator: { type: 'exact_match' } }), field: /name: must not contain/ })),
      poison.map((p) => ({ call: () => client.createEvalVersion.mutate({ id: ids.eval!, evaluator: { type: 'icontains', value: p } }), field: /evaluator\.value: must not contain/ })),
      poison.map((p) => ({ call: () => client.createWebhook.mutate({ url: `https://hooks.example.com/a?q=${p}` }), field: /url: / })),
      poison.map((p) => ({ call: () => client.listDatasets.query({ cursor: p }), field: /cursor: / })),
    );
    await fc.assert(
      fc.asyncProperty(calls, async ({ call, field }) => {
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TRPCClientError);
        const e = err as TRPCClientError<AppRouter>;
        expect(e.data?.httpStatus, e.message).toBe(400);
        expect(e.message).toMatch(field);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  // A URL carries bytes: a lone surrogate goes as its UTF-8 replacement, or as the raw (invalid) bytes of a surrogate.
  const pct = (v: string) => [...Buffer.from(v, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  const queryValue = fc.oneof(poison.map(pct), fc.constantFrom('%00', '%ED%A0%80', '%ED%BF%BF', '%C0%80', 'a%00b', '%F0%9F', '%'));

  it('query parameters: hostile values in every list never answer a 5xx; a hostile cursor is a 400', async () => {
    const lists = [
      '/v1/datasets',
      `/v1/datasets/${ids.dataset}/versions`,
      `/v1/datasets/${ids.dataset}/items`,
      `/v1/datasets/${ids.dataset}/runs`,
      `/v1/eval-runs/${ids.run}/items`,
      `/v1/eval-runs/compare?base=${ids.run}&head=${ids.run}`,
      '/v1/evals',
      '/v1/webhooks',
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...lists), fc.constantFrom('cursor', 'limit', 'status', 'version'), queryValue, async (list, param, value) => {
        const url = `${list}${list.includes('?') ? '&' : '?'}${param}=${value}`;
        const r = await send({ method: 'GET', path: url, field: /./ });
        expect(r.status, `${url} → ${r.status} ${r.text}`).toBeLessThan(500);
        // a parameter the list does not take is ignored (200); one it takes answers { error }
        if (r.status >= 400) expect(JSON.parse(r.text)).toEqual({ error: expect.any(String) });
        if (param === 'cursor') expect(r.status, url).toBe(400);
      }),
      { numRuns: RUNS * 2 },
    );
  });
});

describe('tampered cursors', () => {
  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const tampered = fc.oneof(
    fc.constantFrom('!!!', '%%%', '====', 'a b', '\u00e9', 'AAAA'),
    fc.string({ maxLength: 60 }),
    fc.string({ maxLength: 60 }).map(b64),
    fc.jsonValue({ maxDepth: 3 }).map(b64),
    fc
      .oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.double(), fc.constant(null), fc.boolean(), fc.array(fc.integer(), { maxLength: 3 }), fc.constant(-1), fc.constant(2 ** 53))
      .map((k) => b64({ v: 1, k })),
    fc.constantFrom(b64({ v: 2, k: '0190a0a0-0000-7000-8000-000000000000' }), b64({ v: 1, l: 'nope', k: '0190a0a0-0000-7000-8000-000000000000' }), b64({ v: 1, k: 1e300 }), b64({ v: 1, k: 1.5 })),
    fc.constant('other-list'),
  );
  const lists = () => [
    { path: '/v1/datasets', list: 'datasets' },
    { path: `/v1/datasets/${ids.dataset}/versions`, list: 'dataset-versions' },
    { path: `/v1/datasets/${ids.dataset}/items`, list: 'dataset-items' },
    { path: `/v1/datasets/${ids.dataset}/runs`, list: 'runs' },
    { path: `/v1/eval-runs/${ids.run}/items`, list: 'run-items' },
    { path: `/v1/eval-runs/compare?base=${ids.run}&head=${ids.run}`, list: 'compare' },
    { path: '/v1/evals', list: 'evals' },
    { path: '/v1/webhooks', list: undefined },
  ];

  it('bad base64, base64 of garbage or of wrong types, and another list\'s cursor answer 400 naming cursor on every list', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...lists()), tampered, async ({ path, list }, raw) => {
        // another list's cursor: a well-formed one from listDatasets (or, on listDatasets, one from listEvals)
        const value = raw === 'other-list' ? (list === 'datasets' ? encodeCursor('0190a0a0-0000-7000-8000-000000000000', 'evals') : otherListCursor) : raw;
        const url = `${path}${path.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(value)}`;
        const r = await send({ method: 'GET', path: url, field: /cursor/ });
        if (r.status === 200 && value === '') return; // an empty cursor is no cursor: the first page
        if (r.status === 200) {
          // the only cursors a list may accept are its own, well-formed ones
          const decoded = JSON.parse(Buffer.from(value, 'base64url').toString()) as { v: number; l?: string; k: unknown };
          expect(decoded.l, url).toBe(list);
          return;
        }
        expect400Naming(r, /cursor/, url);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('a list\'s own cursor still walks it', async () => {
    const first = await api<{ data: unknown[]; next_cursor: string }>(s.baseUrl, 'GET', `/v1/datasets/${ids.dataset}/items?limit=2`, t.keys.viewer);
    const second = await api<{ data: unknown[]; next_cursor: string | null }>(s.baseUrl, 'GET', `/v1/datasets/${ids.dataset}/items?limit=2&cursor=${first.body.next_cursor}`, t.keys.viewer);
    expect([first.body.data.length, second.body.data.length, second.body.next_cursor]).toEqual([2, 1, null]);
    // …and is refused by another list
    const other = await api(s.baseUrl, 'GET', `/v1/evals?cursor=${first.body.next_cursor}`, t.keys.viewer);
    expect(other).toEqual({ status: 400, body: { error: expect.stringMatching(/^cursor: /) } });
  });

  it('the server is still healthy', async () => {
    expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200);
  });
});
