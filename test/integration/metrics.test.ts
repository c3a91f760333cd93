/**
 * /metrics: a scrape, a run, a scrape, and the differences between them
 * (items scored by status, evaluator latencies, runs by status, HTTP
 * durations by route pattern), behind EVALGATE_METRICS_TOKEN.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { getRun, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const TOKEN = 'metrics-token-for-tests';

/** Prometheus text format → `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

describe('/metrics', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: true, env: { EVALGATE_METRICS_TOKEN: TOKEN, CHUNK_SIZE: '3' } });
    t = await makeTenant(s.container);
  });
  afterAll(async () => s?.close());

  const scrape = async () => {
    const res = await fetch(`${s.baseUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    return { text, samples: parse(text) };
  };
  const value = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

  it('answers only the configured bearer token', async () => {
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN]) {
      const res = await fetch(`${s.baseUrl}/metrics`, { headers: authorization ? { authorization } : {} });
      expect(res.status, String(authorization)).toBe(401);
      expect(await res.json()).toEqual({ error: 'metrics need "Authorization: Bearer <EVALGATE_METRICS_TOKEN>"' });
    }
  });

  it('counts what a run did: items by status, evaluator latencies, runs by status, requests by route', async () => {
    // numeric_diff: items 0 and 5 cannot be scored (error), odd items pass, the other even ones fail.
    const data = Array.from({ length: 10 }, (_, i) => ({ input: i, expected_output: 10, output: i % 5 === 0 ? 'not a number' : i % 2 ? 10 : 99 }));
    const ds = await makeDataset(s.container, t.id, data);
    const ev = await makeEval(s.container, t.id, { type: 'numeric_diff', tolerance: 0 });

    const before = (await scrape()).samples;
    const scheduled = await scheduleRun(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    const run = await waitForRunEnd(s.baseUrl, t.keys.member, scheduled.id);
    expect(run).toMatchObject({ status: 'completed', passed_count: 4, failed_count: 4, error_count: 2 });
    await getRun(s.baseUrl, t.keys.viewer, run.id);

    // The counters move right after the results are committed, so the run can read `completed` a moment earlier.
    const { text, samples: after } = await waitFor(
      async () => {
        const m = await scrape();
        return value(m.samples, 'evalgate_evaluator_duration_seconds_count') - value(before, 'evalgate_evaluator_duration_seconds_count') >= 10 ? m : null;
      },
      { timeoutMs: 10_000, what: 'evaluator latencies to be observed' },
    );
    const delta = (key: string) => value(after, key) - value(before, key);

    expect(delta('evalgate_items_scored_total{status="passed"}')).toBe(4);
    expect(delta('evalgate_items_scored_total{status="failed"}')).toBe(4);
    expect(delta('evalgate_items_scored_total{status="error"}')).toBe(2);
    expect(delta('evalgate_evaluator_duration_seconds_count')).toBe(10);
    expect(delta('evalgate_evaluator_duration_seconds_bucket{le="+Inf"}')).toBe(10);
    expect(delta('evalgate_runs{status="completed"}')).toBe(1);
    expect(value(after, 'evalgate_runs{status="running"}')).toBe(0);
    expect(delta('evalgate_http_request_duration_seconds_count{method="POST",route="/v1/datasets/{id}/runs",status="202"}')).toBe(1);
    expect(delta('evalgate_http_request_duration_seconds_count{method="GET",route="/v1/eval-runs/{id}",status="200"}')).toBeGreaterThanOrEqual(2);

    for (const q of s.container.queues.all()) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) expect(after.has(`evalgate_queue_jobs{queue="${q.name}",state="${state}"}`), `${q.name} ${state}`).toBe(true);
    }
    // Route patterns only: no id of this test's tenant, dataset or run is a label value.
    for (const id of [t.id, ds.datasetId, run.id]) expect(text).not.toContain(id);
  });

  it('labels requests that match no route as unmatched, whatever their path', async () => {
    const before = (await scrape()).samples;
    for (const path of ['/nope/1', '/nope/2', '/v1/nothing-here']) expect((await fetch(`${s.baseUrl}${path}`)).status).toBe(404);
    const { text, samples: after } = await scrape();
    const key = 'evalgate_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}';
    expect(value(after, key) - value(before, key)).toBe(3);
    expect(text).not.toContain('/nope/');
  });
});
