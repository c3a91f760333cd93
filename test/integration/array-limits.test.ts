/**
 * Every array in every procedure input has a length limit, and the limit is
 * checked before any element is looked at: the work done for an oversized
 * array is counted (element reads through a Proxy, getter calls on items),
 * not timed. The installed zod checks `.max()` before elements (capSize in
 * zod/v4/core/schemas.js); addDatasetItems' configured limit
 * (MAX_ITEMS_PER_REQUEST, below the schema's ceiling) is checked on the raw
 * input by a middleware placed before `.input()`.
 */
import { TRPCError } from '@trpc/server';
import type { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appRouter } from '../../routers/_app.ts';
import { createContextInner } from '../../server/context.ts';
import { createCallerFactory } from '../../server/trpc.ts';
import { makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

const MAX_ITEMS = 100;
let s: Stack;
let t: TenantFixture;
let datasetId: string;

beforeAll(async () => {
  s = await startStack({ env: { MAX_ITEMS_PER_REQUEST: String(MAX_ITEMS) } });
  t = await makeTenant(s.container);
  datasetId = (await api<{ id: string }>(s.baseUrl, 'POST', '/v1/datasets', t.keys.member, { name: 'limits' })).body.id;
});
afterAll(async () => s?.close());

type Def = { type: string; checks?: { _zod: { def: { check: string; maximum?: number } } }[] } & Record<string, unknown>;
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** Every array schema reachable from `schema`, with its path. */
function arraysIn(schema: unknown, path: string, out: { path: string; schema: z.ZodArray }[], seen = new Set<unknown>()): void {
  if (seen.has(schema)) return;
  seen.add(schema);
  const def = defOf(schema);
  const walk = (child: unknown, p: string) => arraysIn(child, p, out, seen);
  switch (def.type) {
    case 'array':
      out.push({ path, schema: schema as z.ZodArray });
      walk(def.element, `${path}[]`);
      break;
    case 'object':
      for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) walk(v, `${path}.${k}`);
      if (def.catchall) walk(def.catchall, `${path}.*`);
      break;
    case 'union':
      (def.options as unknown[]).forEach((o, i) => walk(o, `${path}|${i}`));
      break;
    case 'intersection':
      walk(def.left, path);
      walk(def.right, path);
      break;
    case 'record':
      walk(def.valueType, `${path}{}`);
      break;
    case 'tuple':
      (def.items as unknown[]).forEach((o, i) => walk(o, `${path}[${i}]`));
      if (def.rest) walk(def.rest, `${path}[…]`);
      break;
    case 'pipe':
      walk(def.in, path);
      walk(def.out, path);
      break;
    case 'lazy':
      walk((def.getter as () => unknown)(), path);
      break;
    default:
      if (def.innerType) walk(def.innerType, path);
  }
}

const procedures = Object.entries(appRouter._def.procedures as Record<string, { _def: { inputs?: unknown[] } }>);
const inputArrays = procedures.flatMap(([name, p]) => {
  const out: { path: string; schema: z.ZodArray }[] = [];
  for (const input of p._def.inputs ?? []) arraysIn(input, name, out);
  return out;
});
const maxOf = (a: z.ZodArray) => Math.min(...(defOf(a).checks ?? []).filter((c) => c._zod.def.check === 'max_length').map((c) => c._zod.def.maximum ?? Infinity));

/** An array of `n` elements that counts reads of its elements (a real array behind a Proxy: Array.isArray is true). */
function countingArray(n: number, element: unknown): { array: unknown[]; reads: () => number } {
  let reads = 0;
  const target = new Array<unknown>(n).fill(element);
  const array = new Proxy(target, {
    get(obj, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      return Reflect.get(obj, key, receiver) as unknown;
    },
  });
  return { array, reads: () => reads };
}

describe('array limits', () => {
  it('finds the arrays of the procedure inputs (the walk is not vacuous)', () => {
    const paths = inputArrays.map((a) => a.path);
    expect(paths).toEqual(expect.arrayContaining(['addDatasetItems.items', 'deleteDatasetItems.item_ids']));
    expect(paths.some((p) => p.startsWith('createEval.evaluator'))).toBe(true);
    expect(inputArrays.length).toBeGreaterThanOrEqual(6);
  });

  it('every array in every procedure input has a finite max', () => {
    const unbounded = inputArrays.filter((a) => !Number.isFinite(maxOf(a.schema))).map((a) => a.path);
    expect(unbounded).toEqual([]);
  });

  it('an array one longer than its max is refused without reading one element', () => {
    for (const { path, schema } of inputArrays) {
      const max = maxOf(schema);
      const { array, reads } = countingArray(max + 1, 'x');
      const r = schema.safeParse(array);
      expect(r.success, path).toBe(false);
      expect(r.error?.issues.map((i) => i.code), path).toEqual(['too_big']);
      expect(reads(), `${path}: elements read`).toBe(0);
      // the counter works: at the limit, elements are read
      const ok = countingArray(Math.min(max, 3), 'x');
      schema.safeParse(ok.array);
      expect(ok.reads(), `${path}: elements read at the limit`).toBeGreaterThan(0);
    }
  });

  it('addDatasetItems: 1,000,000 items over MAX_ITEMS_PER_REQUEST are refused (413) before one item is validated', async () => {
    const caller = createCallerFactory(appRouter)(createContextInner(s.container, { authorization: `Bearer ${t.keys.member}` }));
    let getterCalls = 0;
    // Validating an item reads its fields: each read is counted.
    const item = Object.defineProperty({}, 'input', { enumerable: true, get: () => ++getterCalls });
    const { array, reads } = countingArray(1_000_000, item);
    const err = await caller.addDatasetItems({ id: datasetId, items: array as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TRPCError);
    expect((err as TRPCError).code).toBe('PAYLOAD_TOO_LARGE');
    expect((err as TRPCError).message).toMatch(/^items: at most 100 items/);
    expect(reads()).toBe(0);
    expect(getterCalls).toBe(0);

    // At the limit the same items are validated (and stored): the counters would have seen work.
    const small = countingArray(MAX_ITEMS, item);
    const version = await caller.addDatasetItems({ id: datasetId, items: small.array as never });
    expect(version.item_count).toBe(MAX_ITEMS);
    expect(small.reads()).toBeGreaterThanOrEqual(MAX_ITEMS);
    expect(getterCalls).toBeGreaterThanOrEqual(MAX_ITEMS);
  });

  it('over REST: a 999,990-element items array and item_ids array answer 413/400 { error }; one more value than MAX_JSON_VALUES is 413 unparsed', async () => {
    // Just under MAX_JSON_VALUES (1,000,000): the body is parsed, and the schema refuses the array by its length.
    const items = await fetch(`${s.baseUrl}/v1/datasets/${datasetId}/items`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.member}`, 'content-type': 'application/json' },
      body: `{"items":[${'{},'.repeat(999_989)}{}]}`,
    });
    expect(items.status).toBe(413);
    expect(await items.json()).toEqual({ error: expect.stringMatching(/^items: at most 100 items per request \(got 999990\)/) });

    const ids = await fetch(`${s.baseUrl}/v1/datasets/${datasetId}/items/delete`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.member}`, 'content-type': 'application/json' },
      body: `{"item_ids":[${'"x",'.repeat(999_989)}"x"]}`,
    });
    expect(ids.status).toBe(400);
    const body = (await ids.json()) as { error: string };
    expect(body).toEqual({ error: expect.stringMatching(/item_ids/) });
    // one issue (the length), not a million "must be a UUID"
    expect(body.error).not.toMatch(/UUID/);

    const over = await fetch(`${s.baseUrl}/v1/datasets/${datasetId}/items/delete`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.keys.member}`, 'content-type': 'application/json' },
      body: `{"item_ids":[${'"x",'.repeat(1_000_000)}"x"]}`,
    });
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({ error: expect.stringMatching(/^request body holds 1000004 JSON values, more than MAX_JSON_VALUES \(1000000\)/) });
  });
});
