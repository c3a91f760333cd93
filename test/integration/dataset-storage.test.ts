/**
 * Storage bounds of datasets: list pages bounded in bytes (MAX_PAGE_BYTES) as
 * well as in rows, walked exactly once by next_cursor; NDJSON uploads that
 * hold no pooled connection while the client sends (more stalled uploads than
 * DATABASE_POOL_MAX, and other tenants keep working), leave no version when
 * they stall or fail, and whose staged lines are deleted on error and by the
 * sweep of stale uploads. Assertions are on bytes, rows and status codes,
 * never on time.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitUpload, openUpload, purgeStaleUploads, stageItems } from '../../domain/datasets/dataset-staging.service.ts';
import { sql } from '../../domain/shared/sql.ts';
import { makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const MAX_PAGE_BYTES = 2 * 1024 * 1024;
const POOL = 4;
let s: Stack;
let a: TenantFixture;
let b: TenantFixture;

beforeAll(async () => {
  s = await startStack({
    workers: true,
    env: { MAX_PAGE_BYTES: String(MAX_PAGE_BYTES), MAX_ITEM_BYTES: String(4 * 1024 * 1024), DATABASE_POOL_MAX: String(POOL) },
  });
  a = await makeTenant(s.container, 'a');
  b = await makeTenant(s.container, 'b');
});
afterAll(async () => s?.close());

const em = () => s.container.orm.em.fork();
const count = async (q: string, params: unknown[] = []) => (await sql<{ n: number }>(em(), q, params))[0]?.n ?? -1;
const newDataset = async (key: string, name = 'ds') => (await api<{ id: string }>(s.baseUrl, 'POST', '/v1/datasets', key, { name })).body.id;
const latestVersion = async (key: string, id: string) => (await api<{ latest_version: number }>(s.baseUrl, 'GET', `/v1/datasets/${id}`, key)).body.latest_version;

function ndjson(datasetId: string, key: string, body: string | ReadableStream<Uint8Array>, signal?: AbortSignal) {
  return fetch(`${s.baseUrl}/v1/datasets/${datasetId}/items/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' },
    body,
    signal,
    duplex: 'half',
  } as RequestInit);
}

/** Walks a list with limit=100: every page's body size, and every row. */
async function walk(path: string, key: string) {
  const pages: { bytes: number; rows: number }[] = [];
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const res = await fetch(`${s.baseUrl}${path}?limit=100${cursor ? `&cursor=${cursor}` : ''}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text) as { data: { id?: string; item_id?: string }[]; next_cursor: string | null };
    pages.push({ bytes: Buffer.byteLength(text), rows: body.data.length });
    ids.push(...body.data.map((d) => (d.id ?? d.item_id) as string));
    cursor = body.next_cursor;
    expect(pages.length).toBeLessThan(100); // a cursor that never ends is a failure, not a hang
  } while (cursor);
  return { pages, ids };
}

describe('list pages bounded in bytes', () => {
  const SMALL = 10;
  const filler = (n: number) => 'x'.repeat(n);

  it('items of ~700 KiB and one of 3 MiB, limit=100: every page under MAX_PAGE_BYTES (the large row alone), each item exactly once', async () => {
    const ds = await newDataset(a.keys.member, 'large items');
    const lines = Array.from({ length: SMALL }, (_, i) => JSON.stringify({ input: `${i} ${filler(700 * 1024)}`, expected_output: `${i}`, output: `${i}` }));
    lines.splice(4, 0, JSON.stringify({ input: `big ${filler(3 * 1024 * 1024)}`, expected_output: 'big', output: 'big' }));
    const up = await ndjson(ds, a.keys.member, lines.join('\n'));
    expect(up.status).toBe(201);

    const items = await walk(`/v1/datasets/${ds}/items`, a.keys.member);
    expect(items.ids.length).toBe(SMALL + 1);
    expect(new Set(items.ids).size).toBe(SMALL + 1);
    for (const p of items.pages) {
      if (p.rows > 1) expect(p.bytes).toBeLessThanOrEqual(MAX_PAGE_BYTES);
      else expect(p.rows).toBe(1);
    }
    // the 3 MiB row came alone, and the bound cut pages short (without it: one ~10 MiB page)
    expect(items.pages.some((p) => p.rows === 1 && p.bytes > MAX_PAGE_BYTES)).toBe(true);
    expect(items.pages.length).toBeGreaterThanOrEqual(5);

    const ev = await makeEval(s.container, a.id);
    const run = await scheduleRun(s.baseUrl, a.keys.member, ds, ev.evalVersionId);
    expect((await waitForRunEnd(s.baseUrl, a.keys.member, run.id)).status).toBe('completed');
    const results = await walk(`/v1/eval-runs/${run.id}/items`, a.keys.member);
    expect([...results.ids].sort()).toEqual([...items.ids].sort());
    for (const p of results.pages) if (p.rows > 1) expect(p.bytes).toBeLessThanOrEqual(MAX_PAGE_BYTES);
    expect(results.pages.length).toBeGreaterThanOrEqual(5);
  });
});

describe('NDJSON upload staging', () => {
  it(`${POOL * 2} uploads stalled mid-body (pool: ${POOL}) take no connection: other tenants read and write, and no version appears`, async () => {
    const STALLED = POOL * 2;
    const LINES = 1_200; // more than one staging batch, so every upload has written to the database
    const datasets = await Promise.all(Array.from({ length: STALLED }, (_, i) => newDataset(a.keys.member, `stalled ${i}`)));
    // Raw sockets: the body is declared long, a part of it is sent, then nothing (a client that stalls, then dies).
    const { port } = new URL(s.baseUrl);
    const sockets = datasets.map((ds, i) => {
      const sock = connect(Number(port), '127.0.0.1');
      sock.on('error', () => undefined);
      let lines = '';
      for (let k = 0; k < LINES; k++) lines += `${JSON.stringify({ input: `u${i} line ${k}` })}\n`;
      sock.write(
        `POST /v1/datasets/${ds}/items/upload HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${a.keys.member}\r\n` +
          `content-type: application/x-ndjson\r\ncontent-length: ${1024 * 1024 * 1024}\r\n\r\n${lines}`,
      );
      return sock;
    });
    try {
      await waitFor(async () => (await count('select count(distinct upload_id)::int as n from dataset_upload_items')) >= STALLED, { what: 'every upload staged a batch' });

      // Another tenant, meanwhile: writes and reads all answer (success, not speed; a deadline so a taken pool fails instead of hanging).
      const deadline = () => AbortSignal.timeout(30_000);
      const rounds = await Promise.all(
        Array.from({ length: POOL * 2 }, async (_, i) => {
          const created = await fetch(`${s.baseUrl}/v1/datasets`, { method: 'POST', signal: deadline(), headers: { authorization: `Bearer ${b.keys.member}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: `b${i}` }) });
          const id = ((await created.json()) as { id: string }).id;
          const added = await fetch(`${s.baseUrl}/v1/datasets/${id}/items`, { method: 'POST', signal: deadline(), headers: { authorization: `Bearer ${b.keys.member}`, 'content-type': 'application/json' }, body: JSON.stringify({ items: [{ input: 'q', expected_output: 'a' }] }) });
          const uploaded = await fetch(`${s.baseUrl}/v1/datasets/${id}/items/upload`, { method: 'POST', signal: deadline(), headers: { authorization: `Bearer ${b.keys.member}`, 'content-type': 'application/x-ndjson' }, body: '{"input":"q2"}\n' });
          const listed = await fetch(`${s.baseUrl}/v1/datasets/${id}/items`, { signal: deadline(), headers: { authorization: `Bearer ${b.keys.viewer}` } });
          const items = ((await listed.json()) as { data: unknown[] }).data.length;
          return [created.status, added.status, uploaded.status, listed.status, items];
        }),
      );
      for (const r of rounds) expect(r).toEqual([201, 201, 201, 200, 2]);

      // Stalled uploads created no version and stored no item.
      for (const ds of datasets) expect(await latestVersion(a.keys.viewer, ds)).toBe(1);
      expect(await count(`select count(*)::int as n from dataset_items where dataset_id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`, [JSON.stringify(datasets)])).toBe(0);
    } finally {
      for (const sock of sockets) sock.destroy();
    }
    // The clients went away: their staged lines are deleted.
    await waitFor(async () => (await count('select count(*)::int as n from dataset_uploads')) === 0, { what: 'abandoned uploads cleaned' });
    expect(await count('select count(*)::int as n from dataset_upload_items')).toBe(0);
    for (const ds of datasets) expect(await latestVersion(a.keys.viewer, ds)).toBe(1);
  });

  it('a bad line after 20,000 good ones stores nothing: no version, no item, no staged line', async () => {
    const ds = await newDataset(a.keys.member, 'late bad line');
    const good = Array.from({ length: 20_000 }, (_, k) => JSON.stringify({ input: `line ${k}`, metadata: { k } }));
    const res = await ndjson(ds, a.keys.member, `${good.join('\n')}\n{"input": "\\u0000"}\n`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: expect.stringMatching(/^1 bad line\(s\), nothing stored: line 20001: input: must not contain NUL/) });
    expect(await latestVersion(a.keys.viewer, ds)).toBe(1);
    expect(await count('select count(*)::int as n from dataset_items where dataset_id = ?', [ds])).toBe(0);
    expect(await count('select count(*)::int as n from dataset_upload_items')).toBe(0);
    expect(await count('select count(*)::int as n from dataset_uploads')).toBe(0);

    // the same upload without the bad line lands whole, in one version
    const ok = await ndjson(ds, a.keys.member, good.join('\n'));
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({ version: 2, item_count: 20_000 });
    expect(await count('select count(*)::int as n from dataset_items where dataset_id = ? and valid_from = 2', [ds])).toBe(20_000);
  });

  it('the sweep deletes uploads idle past UPLOAD_STAGING_TTL_MS (a crashed process), and such an upload cannot commit', async () => {
    const ds = await newDataset(a.keys.member, 'crashed upload');
    const uploadId = await openUpload(em(), a.id, ds);
    await stageItems(em(), uploadId, 0, [{ input: 'staged 1' }, { input: 'staged 2' }]);
    expect(await count('select count(*)::int as n from dataset_upload_items where upload_id = ?', [uploadId])).toBe(2);

    // a fresh upload is left alone by the sweep
    expect(await purgeStaleUploads(em(), s.env.UPLOAD_STAGING_TTL_MS)).toBe(0);
    await sql(em(), `update dataset_uploads set touched_at = now() - interval '1 day' where id = ?`, [uploadId]);
    // the next upload sweeps it (as does the reconciler)
    const other = await newDataset(a.keys.member, 'next upload');
    expect((await ndjson(other, a.keys.member, '{"input":"x"}')).status).toBe(201);
    expect(await count('select count(*)::int as n from dataset_uploads where id = ?', [uploadId])).toBe(0);
    expect(await count('select count(*)::int as n from dataset_upload_items where upload_id = ?', [uploadId])).toBe(0);

    await expect(commitUpload(em(), a.id, ds, uploadId)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(stageItems(em(), uploadId, 2, [{ input: 'late' }])).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await latestVersion(a.keys.viewer, ds)).toBe(1);
  });
});
