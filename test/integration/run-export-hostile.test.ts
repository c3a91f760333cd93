/**
 * A tenant that opens exports and never reads them: each stalls on its
 * socket, holds no database connection and at most a page of memory, and
 * counts against the per-tenant cap (the next gets 429 { error }); other
 * tenants and the health check are served meanwhile, and closing the
 * sockets frees the slots.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addDatasetItems, createDataset } from '../../domain/datasets/dataset.service.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { api, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

let s: Stack;
let a: TenantFixture;
let b: TenantFixture;
let bigRun: string;
let smallRun: string;

async function finishedRun(key: string, datasetId: string, evalVersionId: string): Promise<string> {
  const r = await api<{ id: string }>(s.baseUrl, 'POST', `/v1/datasets/${datasetId}/runs`, key, { eval_version_id: evalVersionId });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  await waitForRunEnd(s.baseUrl, key, r.body.id, 120_000);
  return r.body.id;
}

/** Sends the export request and stops reading once the answer's head has arrived. */
function stalledExport(runId: string, key: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const port = Number(new URL(s.baseUrl).port);
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET /v1/eval-runs/${runId}/items/export?format=jsonl HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n\r\n`);
    });
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      resolve({ socket, head: chunk.toString('latin1').split('\r\n')[0] ?? '' });
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  s = await startStack({ workers: true });
  a = await makeTenant(s.container, 'export hostile a', 'org_export_hostile_a');
  b = await makeTenant(s.container, 'export hostile b', 'org_export_hostile_b');
  // ≈ 25 MB of items: more than the socket buffers of a client that does not read
  const em = s.container.orm.em.fork();
  const { dataset } = await createDataset(em, a.id, { name: 'big' });
  for (let batch = 0; batch < 5; batch++) {
    await addDatasetItems(em, a.id, dataset.id, Array.from({ length: 100 }, (_, i) => ({ input: { i: batch * 100 + i, pad: 'x'.repeat(50_000) }, expected_output: 'a', output: 'a' })));
  }
  bigRun = await finishedRun(a.keys.member, dataset.id, (await makeEval(s.container, a.id)).evalVersionId);
  const small = await makeDataset(s.container, b.id, items(3));
  smallRun = await finishedRun(b.keys.member, small.datasetId, (await makeEval(s.container, b.id)).evalVersionId);
}, 180_000);

afterAll(async () => {
  await s?.close();
});

describe('exports under a tenant that never reads them', () => {
  it('cap the tenant at 4, keep serving others, and free the slots when the sockets close', async () => {
    const stalled = await Promise.all(Array.from({ length: 4 }, () => stalledExport(bigRun, a.keys.viewer)));
    try {
      expect(stalled.map((x) => x.head)).toEqual(Array(4).fill('HTTP/1.1 200 OK'));
      const fifth = await fetch(`${s.baseUrl}/v1/eval-runs/${bigRun}/items/export`, { headers: { authorization: `Bearer ${a.keys.viewer}` } });
      expect(fifth.status).toBe(429);
      expect(fifth.headers.get('retry-after')).toEqual(expect.any(String));
      expect(await fifth.json()).toEqual({ error: expect.stringMatching(/exports in progress/) });

      const other = await fetch(`${s.baseUrl}/v1/eval-runs/${smallRun}/items/export`, { headers: { authorization: `Bearer ${b.keys.viewer}` } });
      expect(other.status).toBe(200);
      expect((await other.text()).trimEnd().split('\n')).toHaveLength(3);
      expect((await fetch(`${s.baseUrl}/healthz`)).status).toBe(200);
      // a stalled export holds no database connection: reads of the same tenant go on
      expect((await api(s.baseUrl, 'GET', `/v1/eval-runs/${bigRun}`, a.keys.viewer)).status).toBe(200);
    } finally {
      for (const x of stalled) x.socket.destroy();
    }
    const again = await waitFor(
      async () => {
        const r = await fetch(`${s.baseUrl}/v1/eval-runs/${smallRun}/items/export`, { headers: { authorization: `Bearer ${b.keys.viewer}` } });
        const mine = await fetch(`${s.baseUrl}/v1/eval-runs/${bigRun}/items/export?status=failed`, { headers: { authorization: `Bearer ${a.keys.viewer}` } });
        await r.text();
        await mine.text();
        return mine.status === 200 ? mine : null;
      },
      { timeoutMs: 10_000, what: 'the slots to be freed' },
    );
    expect(again.status).toBe(200);
  });
});
