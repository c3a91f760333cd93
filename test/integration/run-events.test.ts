/**
 * Watching a run: GET /v1/eval-runs/{id}/events (SSE over real HTTP) and the
 * tRPC subscription watchEvalRun over httpSubscriptionLink, against runs that
 * real workers make slow on purpose (EVALGATE_FAULT=chunk-delay-ms).
 */
import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvalgateClient } from '../../client/index.ts';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';
import { insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

// 20 items in chunks of 2, one chunk at a time, 150 ms each: progress in ten visible steps.
const SLOW = { CHUNK_SIZE: '2', WORKER_CONCURRENCY: '1', EVALGATE_FAULT: 'chunk-delay-ms=150', RUN_WATCH_INTERVAL_MS: '50' };

interface WireEvent {
  event: string;
  data: string;
}

/** Reads an SSE response to its end, splitting it by the wire format itself (not by our client's parser). */
async function readEvents(res: Response): Promise<{ events: WireEvent[]; raw: string }> {
  const raw = await res.text();
  const events = raw
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      return {
        event: lines.find((l) => l.startsWith('event: '))?.slice(7) ?? '',
        data: lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'),
      };
    })
    .filter((e) => e.event !== '');
  return { events, raw };
}

const events = (base: string, runId: string, key?: string) =>
  fetch(`${base}/v1/eval-runs/${runId}/events`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

describe('with slow runs', () => {
  let s: Stack;
  let t: TenantFixture;
  let other: TenantFixture;
  let dataset: string;
  let evalVersion: string;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: SLOW });
    t = await makeTenant(s.container, 'watcher');
    other = await makeTenant(s.container, 'other');
    dataset = (await makeDataset(s.container, t.id, items(20, (i) => i % 4 !== 0))).datasetId;
    evalVersion = (await makeEval(s.container, t.id)).evalVersionId;
  });
  afterAll(async () => s?.close());

  it('streams increasing progress as SSE, then one done event with the completed run, then closes', async () => {
    const run = await scheduleRun(s.baseUrl, t.keys.member, dataset, evalVersion);
    const res = await events(s.baseUrl, run.id, t.keys.viewer);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { events: got, raw } = await readEvents(res);
    expect(raw.startsWith('retry: ')).toBe(true);

    const names = got.map((e) => e.event);
    expect(names.slice(0, -1).every((n) => n === 'progress'), names.join(',')).toBe(true);
    expect(names.at(-1)).toBe('done');
    const runs = got.map((e) => JSON.parse(e.data) as EvalRunDto);
    const counts = runs.map((r) => r.completed_count);
    for (let i = 1; i < counts.length; i++) expect(counts[i], counts.join(',')).toBeGreaterThanOrEqual(counts[i - 1] as number);
    // Progress a person can see: some snapshots strictly between nothing and everything.
    expect(new Set(counts.filter((c) => c > 0 && c < 20)).size, counts.join(',')).toBeGreaterThanOrEqual(2);
    // Every event is a change: no snapshot repeats the one before it.
    for (let i = 1; i < got.length; i++) expect(got[i]?.data).not.toBe(got[i - 1]?.data);
    const last = runs.at(-1) as EvalRunDto;
    expect(last).toMatchObject({ id: run.id, status: 'completed', completed_count: 20, passed_count: 15, failed_count: 5 });
    expect(last).toEqual(await waitForRunEnd(s.baseUrl, t.keys.member, run.id));
  });

  it('answers a finished run with the progress on connect (as README says), then one done event', async () => {
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, (await scheduleRun(s.baseUrl, t.keys.member, dataset, evalVersion)).id);
    const { events: got } = await readEvents(await events(s.baseUrl, run.id, t.keys.member));
    expect(got).toEqual([
      { event: 'progress', data: JSON.stringify(run) },
      { event: 'done', data: JSON.stringify(run) },
    ]);
  });

  it('answers { error } with 401, 404 (another tenant\'s run, the same as a missing one) and 400 before streaming', async () => {
    const run = await scheduleRun(s.baseUrl, t.keys.member, dataset, evalVersion);
    const cases: [string, string | undefined, number, RegExp][] = [
      [run.id, undefined, 401, /missing Authorization/],
      [run.id, 'tl_nope', 401, /API key/],
      [run.id, other.keys.owner, 404, new RegExp(`eval run ${run.id} not found`)],
      ['0190a0b0-0000-7000-8000-000000000009', t.keys.owner, 404, /not found/],
      ['not-a-uuid', t.keys.owner, 400, /must be a UUID/],
    ];
    for (const [id, key, status, message] of cases) {
      const res = await events(s.baseUrl, id, key);
      expect(res.status, `${id} ${key}`).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { error: string };
      expect(Object.keys(body)).toEqual(['error']);
      expect(body.error).toMatch(message);
    }
    await waitForRunEnd(s.baseUrl, t.keys.member, run.id);
  });

  it('serves the same stream as the tRPC subscription watchEvalRun over httpSubscriptionLink', async () => {
    const client = createEvalgateClient({ url: s.baseUrl, apiKey: t.keys.viewer });
    const run = await scheduleRun(s.baseUrl, t.keys.member, dataset, evalVersion);
    const seen: EvalRunDto[] = [];
    await new Promise<void>((resolve, reject) => {
      const sub = client.watchEvalRun.subscribe(
        { id: run.id },
        {
          onData: (r) => seen.push(r),
          onError: (err) => {
            sub.unsubscribe();
            reject(err);
          },
          onComplete: () => resolve(),
        },
      );
    });
    const counts = seen.map((r) => r.completed_count);
    for (let i = 1; i < counts.length; i++) expect(counts[i], counts.join(',')).toBeGreaterThanOrEqual(counts[i - 1] as number);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.at(-1)).toMatchObject({ id: run.id, status: 'completed', completed_count: 20 });
    expect(seen.at(-1)).toEqual(await waitForRunEnd(s.baseUrl, t.keys.member, run.id));
  });

  it('the subscription refuses another tenant\'s run with NOT_FOUND, and a bad key with UNAUTHORIZED', async () => {
    const run = await scheduleRun(s.baseUrl, t.keys.member, dataset, evalVersion);
    const firstError = (apiKey: string) =>
      new Promise<unknown>((resolve) => {
        const sub = createEvalgateClient({ url: s.baseUrl, apiKey }).watchEvalRun.subscribe(
          { id: run.id },
          {
            onData: () => resolve(new Error('got data')),
            onError: (err) => {
              sub.unsubscribe();
              resolve(err);
            },
          },
        );
      });
    const notFound = await firstError(other.keys.viewer);
    expect(notFound).toBeInstanceOf(TRPCClientError);
    expect((notFound as TRPCClientError<never>).data).toMatchObject({ code: 'NOT_FOUND' });
    expect((notFound as Error).message).toBe(`eval run ${run.id} not found`);
    const unauthorized = await firstError('tl_nope');
    expect((unauthorized as TRPCClientError<never>).data).toMatchObject({ code: 'UNAUTHORIZED' });
    await waitForRunEnd(s.baseUrl, t.keys.member, run.id);
  });

  it('keeps /openapi.json whole: the SSE path is documented by hand, the subscription is not an operation', async () => {
    const doc = (await (await fetch(`${s.baseUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, { content?: Record<string, unknown> }> }>> };
    const op = doc.paths['/v1/eval-runs/{id}/events']?.get;
    expect(op?.operationId).toBe('watchEvalRunEvents');
    expect(Object.keys(op?.responses['200']?.content ?? {})).toEqual(['text/event-stream']);
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(ids).not.toContain('watchEvalRun');
    expect(ids).toEqual(expect.arrayContaining(['createWebhook', 'listWebhooks', 'deleteWebhook', 'getEvalRun']));
  });
});

describe('shutdown', () => {
  it('ends open streams when the server closes, without a done event, so clients reconnect elsewhere', async () => {
    const s = await startStack({ workers: false });
    try {
      const t = await makeTenant(s.container);
      const ds = await makeDataset(s.container, t.id, items(3));
      const ev = await makeEval(s.container, t.id);
      // No workers: the run stays pending, so only the server's close can end the stream.
      const run = await insertPendingRun(s.container.orm.em.fork(), t.id, ds.datasetId, ev.evalVersionId);
      const res = await events(s.baseUrl, run.id, t.keys.viewer);
      expect(res.status).toBe(200);
      const reader = res.body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
      let text = '';
      while (!text.includes('event: progress')) text += new TextDecoder().decode((await reader.read()).value);
      await s.app?.close();
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
      expect(text).toContain('"status":"pending"');
      expect(text).not.toContain('event: done');
    } finally {
      await s.close();
    }
  });
});
