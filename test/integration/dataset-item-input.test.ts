/**
 * What a client gets wrong when adding items, answered once and by name: the
 * NDJSON upload sent with curl's default, a JSON or a text content type or none
 * gets one 400 naming application/x-ndjson (not the JSON parser's messages);
 * an item with a field the schema does not know (`expected` for
 * `expected_output`) is refused naming that field, over REST, tRPC and in each
 * uploaded line, and nothing is stored.
 */
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/_app.ts';
import { makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let t: TenantFixture;
let dataset: string;

beforeAll(async () => {
  s = await startStack();
  t = await makeTenant(s.container, 'items');
  dataset = (await api<{ id: string }>(s.baseUrl, 'POST', '/v1/datasets', t.keys.member, { name: 'ds' })).body.id;
});
afterAll(async () => s?.close());

const latestVersion = async () => (await api<{ latest_version: number }>(s.baseUrl, 'GET', `/v1/datasets/${dataset}`, t.keys.member)).body.latest_version;

/** A Uint8Array body makes fetch send no Content-Type of its own, so `undefined` really sends none. */
async function upload(contentType: string | undefined, text: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${t.keys.member}` };
  if (contentType !== undefined) headers['content-type'] = contentType;
  const res = await fetch(`${s.baseUrl}/v1/datasets/${dataset}/items/upload`, { method: 'POST', headers, body: new TextEncoder().encode(text) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('NDJSON upload content type', () => {
  const lines = '{"input":1,"expected_output":1}\n{"input":2}\n';

  it.each([
    ['curl -d default', 'application/x-www-form-urlencoded'],
    ['none', undefined],
    ['JSON', 'application/json'],
    ['text', 'text/plain'],
    ['text with charset', 'text/plain; charset=utf-8'],
    ['unparseable', 'not a type'],
  ])('%s (%s): one 400 naming application/x-ndjson, nothing stored', async (_name, type) => {
    const before = await latestVersion();
    const r = await upload(type, lines);
    expect(r.status).toBe(400);
    expect(Object.keys(r.body)).toEqual(['error']);
    expect(r.body.error).toBe('body must be NDJSON, one item per line, sent with Content-Type: application/x-ndjson');
    expect(await latestVersion()).toBe(before);
  });

  it('the NDJSON types still upload', async () => {
    const before = await latestVersion();
    for (const type of ['application/x-ndjson', 'application/x-ndjson; charset=utf-8', 'application/jsonl']) {
      const r = await upload(type, lines);
      expect(r.status, type).toBe(201);
      expect(r.body.item_count, type).toBeGreaterThanOrEqual(2);
    }
    expect(await latestVersion()).toBe(before + 3);
  });
});

describe('unknown item fields', () => {
  it('REST addDatasetItems: 400 naming the field and the item, nothing stored', async () => {
    const before = await latestVersion();
    const r = await api<Record<string, unknown>>(s.baseUrl, 'POST', `/v1/datasets/${dataset}/items`, t.keys.member, {
      items: [{ input: 'a', expected_output: 'a' }, { input: 'b', expected: 'b' }],
    });
    expect(r.status).toBe(400);
    expect(Object.keys(r.body)).toEqual(['error']);
    expect(r.body.error).toMatch(/items\.1: .*unrecognized key.*"expected"/i);
    expect(await latestVersion()).toBe(before);
  });

  it('tRPC addDatasetItems: BAD_REQUEST naming the field', async () => {
    const c = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${s.baseUrl}/trpc`, headers: { authorization: `Bearer ${t.keys.member}` } })] });
    const before = await latestVersion();
    const err = await c.addDatasetItems.mutate({ id: dataset, items: [{ input: 'a', expected: 'a' } as never] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TRPCClientError);
    const e = err as TRPCClientError<AppRouter>;
    expect(e.data?.httpStatus).toBe(400);
    expect(e.message).toMatch(/items\.0: .*unrecognized key.*"expected"/i);
    expect(await latestVersion()).toBe(before);
  });

  it('NDJSON upload: the bad line by number and the field, nothing stored', async () => {
    const before = await latestVersion();
    const r = await upload('application/x-ndjson', '{"input":1}\n{"input":2,"expected":2}\n{"input":3}\n');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/^1 bad line\(s\), nothing stored: line 2: .*unrecognized key.*"expected"/i);
    expect(await latestVersion()).toBe(before);
  });

  it('the known fields still pass', async () => {
    const r = await api<Record<string, unknown>>(s.baseUrl, 'POST', `/v1/datasets/${dataset}/items`, t.keys.member, {
      items: [{ input: 'a', expected_output: 'a', output: 'a', metadata: { k: 1 } }],
    });
    expect(r.status).toBe(201);
  });
});
