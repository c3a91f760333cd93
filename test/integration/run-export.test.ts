/**
 * GET /v1/eval-runs/{id}/items/export: every result with its item, in item
 * order, as JSON Lines or RFC 4180 CSV (read back with csv-parse), across
 * several byte-bounded pages, the same rows listEvalRunItems pages through;
 * bad input and other tenants get { error }.
 */
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let a: TenantFixture;
let b: TenantFixture;
let runId: string;
const N = 40;

/** ~5 KB of input each (so a 64 KB page holds about a dozen), with text that CSV must quote. */
const data = Array.from({ length: N }, (_, i) => ({
  input: { question: `q${i}, "quoted"\nand a new line`, pad: 'x'.repeat(5_000) },
  expected_output: `a${i}`,
  output: i % 4 === 0 ? `wrong, ${i}` : `a${i}`,
}));

async function exportText(query: string, key = a.keys.viewer) {
  const res = await fetch(`${s.baseUrl}/v1/eval-runs/${runId}/items/export?${query}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

async function listAll(): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  do {
    const page: { status: number; body: { data: Record<string, unknown>[]; next_cursor: string | null } } = await api(
      s.baseUrl, 'GET', `/v1/eval-runs/${runId}/items?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, a.keys.viewer,
    );
    out.push(...page.body.data);
    cursor = page.body.next_cursor;
  } while (cursor);
  return out;
}

beforeAll(async () => {
  s = await startStack({ workers: true, env: { MAX_PAGE_BYTES: String(64 * 1024) } });
  a = await makeTenant(s.container, 'export a', 'org_export_a');
  b = await makeTenant(s.container, 'export b', 'org_export_b');
  const ds = await makeDataset(s.container, a.id, data);
  const ev = await makeEval(s.container, a.id);
  const run = await api<{ id: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, a.keys.member, { eval_version_id: ev.evalVersionId });
  runId = run.body.id;
  await waitForRunEnd(s.baseUrl, a.keys.member, runId);
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('exportEvalRunItems', () => {
  it('streams JSON Lines: one result per line, in item order, the same rows the paged list gives', async () => {
    const listed = await listAll();
    expect(listed).toHaveLength(N);
    const r = await exportText('format=jsonl');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/x-ndjson/);
    expect(r.text.endsWith('\n')).toBe(true);
    const lines = r.text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual(listed);
    expect((await exportText('')).text).toBe(r.text); // jsonl is the default
  });

  it('streams RFC 4180 CSV with a header and JSON cells, read back by a CSV parser', async () => {
    const r = await exportText('format=csv');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/csv/);
    const records = parse(r.text, { columns: true }) as Record<string, string>[];
    expect(records).toHaveLength(N);
    expect(Object.keys(records[0] ?? {})).toEqual([
      'item_id', 'status', 'score', 'passed', 'reason', 'error', 'attempts', 'latency_ms',
      'prompt_tokens', 'completion_tokens', 'cost_usd', 'input', 'output', 'expected_output',
      'sample_output', 'sample_error', 'sample_cached', 'sample_attempts', 'scores',
    ]);
    const listed = await listAll();
    records.forEach((rec, i) => {
      const item = listed[i] as Record<string, unknown>;
      expect(rec.item_id).toBe(item.item_id);
      expect(rec.status).toBe(item.status);
      expect(JSON.parse(rec.input as string)).toEqual(item.input);
      expect(JSON.parse(rec.output as string)).toEqual(item.output);
    });
    expect(records.filter((x) => x.status === 'failed')).toHaveLength(N / 4);
  });

  it('filters by status', async () => {
    const r = await exportText('format=jsonl&status=failed');
    const lines = r.text.trimEnd().split('\n').map((l) => JSON.parse(l) as { status: string });
    expect(lines).toHaveLength(N / 4);
    expect(lines.every((l) => l.status === 'failed')).toBe(true);
  });

  it('answers { error } for bad input, no credentials and other tenants', async () => {
    for (const query of ['format=xml', 'status=maybe', 'format=csv&format=jsonl']) {
      const r = await exportText(query);
      expect(r.status, query).toBe(400);
      expect(JSON.parse(r.text)).toEqual({ error: expect.any(String) });
    }
    const foreign = await exportText('format=csv', b.keys.viewer);
    expect(foreign.status).toBe(404);
    expect(JSON.parse(foreign.text)).toEqual({ error: expect.any(String) });
    const anonymous = await fetch(`${s.baseUrl}/v1/eval-runs/${runId}/items/export`);
    expect(anonymous.status).toBe(401);
    const notUuid = await fetch(`${s.baseUrl}/v1/eval-runs/nope/items/export`, { headers: { authorization: `Bearer ${a.keys.viewer}` } });
    expect(notUuid.status).toBe(400);
  });
});
