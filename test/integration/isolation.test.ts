/**
 * Tenant isolation over tRPC (REST is covered in datasets-evals.test.ts):
 * every procedure called by tenant B with tenant A's ids answers NOT_FOUND
 * and carries none of A's data. And Redis holds ids only: after real runs,
 * no key, secret or item content is found in any key under the prefix.
 */
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appRouter, type AppRouter } from '../../routers/_app.ts';
import { makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let a: TenantFixture;
let b: TenantFixture;
const A: Record<string, string> = {};
const SECRET = 'secret-content-of-tenant-a';

beforeAll(async () => {
  s = await startStack({ workers: true });
  a = await makeTenant(s.container, 'a');
  b = await makeTenant(s.container, 'b');
  const ds = await makeDataset(s.container, a.id, [{ input: SECRET, expected_output: SECRET, output: SECRET, metadata: { note: SECRET } }, { input: 'x', expected_output: 'y', output: 'z' }]);
  const ev = await makeEval(s.container, a.id);
  const run = await waitForRunEnd(s.baseUrl, a.keys.member, (await scheduleRun(s.baseUrl, a.keys.member, ds.datasetId, ev.evalVersionId)).id);
  const item = (await api<{ data: { id: string }[] }>(s.baseUrl, 'GET', `/v1/datasets/${ds.datasetId}/items`, a.keys.member)).body.data[0];
  Object.assign(A, { dataset: ds.datasetId, evalId: ev.evalId, evalVersion: ev.evalVersionId, run: run.id, item: item?.id });
});
afterAll(async () => s?.close());

describe('tenant isolation over tRPC', () => {
  it('every procedure answers NOT_FOUND to tenant B for tenant A\'s ids', async () => {
    const inputs: Record<string, unknown> = {
      scheduleEvalRun: { id: A.dataset, eval_version_id: A.evalVersion },
      getEvalRun: { id: A.run },
      cancelEvalRun: { id: A.run },
      retryEvalRun: { id: A.run },
      deleteEvalRun: { id: A.run },
      gateEvalRun: { id: A.run, policy: {} },
      listEvalRuns: { id: A.dataset },
      compareEvalRuns: { base: A.run, head: A.run },
      listEvalRunItems: { id: A.run },
      getDataset: { id: A.dataset },
      deleteDataset: { id: A.dataset },
      addDatasetItems: { id: A.dataset, items: [{ input: 1 }] },
      deleteDatasetItems: { id: A.dataset, item_ids: [A.item] },
      listDatasetVersions: { id: A.dataset },
      listDatasetItems: { id: A.dataset },
      createEvalVersion: { id: A.evalId, evaluator: { type: 'exact_match' } },
      getEval: { id: A.evalId },
      deleteWebhook: { id: A.run },
      watchEvalRun: { id: A.run },
    };
    // procedures that take no id of another tenant: they may only ever show B's own data
    const unscoped = new Set(['createDataset', 'listDatasets', 'createEval', 'listEvals', 'createWebhook', 'listWebhooks']);
    const client = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${s.baseUrl}/trpc`, headers: { authorization: `Bearer ${b.keys.owner}` } })] });
    const procedures = appRouter._def.procedures as Record<string, { _def: { type: string } }>;
    const names = Object.keys(procedures);
    expect(names.length).toBeGreaterThan(15);
    for (const name of names) {
      if (unscoped.has(name)) continue;
      expect(Object.keys(inputs), `add ${name} to this isolation matrix`).toContain(name);
      const type = procedures[name]?._def.type;
      if (type === 'subscription') continue; // covered by its own test over SSE
      const proc = (client as unknown as Record<string, { query(i: unknown): Promise<unknown>; mutate(i: unknown): Promise<unknown> }>)[name];
      const call = type === 'query' ? proc?.query(inputs[name]) : proc?.mutate(inputs[name]);
      const err = await Promise.resolve(call).then(() => null, (e: unknown) => e);
      expect(err, name).toBeInstanceOf(TRPCClientError);
      expect((err as TRPCClientError<AppRouter>).data?.code, name).toBe('NOT_FOUND');
      expect(JSON.stringify((err as TRPCClientError<AppRouter>).shape), name).not.toContain(SECRET);
    }
    for (const list of [await client.listDatasets.query({}), await client.listEvals.query({})]) {
      expect(JSON.stringify(list)).not.toContain(A.dataset);
      expect(JSON.stringify(list)).not.toContain(A.evalId);
    }
  });
});

describe('Redis holds ids only', () => {
  it('no API key, key hash, or item content in any key under the queue prefix', async () => {
    // keep some chunk jobs in Redis to look at: pause the chunk queue while a run starts
    await s.container.queues.runChunk.pause();
    const ds = await makeDataset(s.container, a.id, [{ input: SECRET, output: SECRET, expected_output: SECRET }]);
    const ev = await makeEval(s.container, a.id);
    const run = await scheduleRun(s.baseUrl, a.keys.member, ds.datasetId, ev.evalVersionId);
    const { waitFor } = await import('../helpers/stack.ts');
    await waitFor(async () => (await s.container.queues.runChunk.getJobCounts('prioritized', 'wait')).prioritized! > 0, { what: 'a queued chunk job' });
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await s.redis.scan(cursor, 'MATCH', `${s.env.EVALGATE_QUEUE_PREFIX}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    expect(keys.length).toBeGreaterThan(0);
    let dump = '';
    for (const key of keys) {
      const type = await s.redis.type(key);
      if (type === 'hash') dump += JSON.stringify(await s.redis.hgetall(key));
      else if (type === 'string') dump += (await s.redis.get(key)) ?? '';
      else if (type === 'list') dump += JSON.stringify(await s.redis.lrange(key, 0, -1));
      else if (type === 'set') dump += JSON.stringify(await s.redis.smembers(key));
      else if (type === 'zset') dump += JSON.stringify(await s.redis.zrange(key, 0, -1));
      else if (type === 'stream') dump += JSON.stringify(await s.redis.xrange(key, '-', '+'));
      dump += `\n${key}\n`;
    }
    for (const secret of [...Object.values(a.keys), ...Object.values(b.keys), SECRET]) expect(dump).not.toContain(secret);
    expect(dump).not.toMatch(/tl_[0-9A-Za-z]{20,}/);
    // job payloads are ids only
    const payloads = [...dump.matchAll(/"data":"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(JSON.parse(`"${m[1]}"`)) as Record<string, unknown>);
    expect(payloads).toContainEqual({ run_id: run.id, chunk_index: 0 });
    for (const data of payloads) {
      for (const v of Object.values(data)) expect(typeof v === 'number' || /^[0-9a-f-]{36}$/.test(String(v)), JSON.stringify(data)).toBe(true);
    }
    await s.container.queues.runChunk.resume();
    expect((await waitForRunEnd(s.baseUrl, a.keys.member, run.id)).status).toBe('completed');
  });
});
