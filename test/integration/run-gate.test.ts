/**
 * POST /v1/eval-runs/{id}/gate: a policy applied to a finished run, alone or
 * against a baseline (by id, or the latest completed run with a label),
 * answering passed / failed / pending with one reason per failed check.
 * Scores come from real runs scored by the workers.
 */
import { createTRPCClient, httpBatchLink } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/_app.ts';
import { sql } from '../../domain/shared/sql.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { api, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

let s: Stack;
let a: TenantFixture;
let b: TenantFixture;
let ds: { datasetId: string };
/** exact_match: items 0–7 of 10 pass */
let exact: string;
/** regex on the output: items 0–4 pass, so 5–7 regress against `exact` */
let narrower: string;
/** numeric_diff over text: every item is an error */
let erroring: string;
let baseRun: string;
let headRun: string;
let errorRun: string;

type Verdict = {
  run_id: string;
  baseline_run_id: string | null;
  verdict: string;
  reasons: string[];
  checks: { check: string; status: string; actual: number | null; limit: number }[];
  stats: Record<string, number | null>;
};

const gate = (runId: string, body: unknown, key = a.keys.viewer) => api<Verdict>(s.baseUrl, 'POST', `/v1/eval-runs/${runId}/gate`, key, body);

async function finishedRun(evalVersionId: string, label: Record<string, unknown> = {}): Promise<string> {
  const r = await api<{ id: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, a.keys.member, { eval_version_id: evalVersionId, ...label });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  await waitForRunEnd(s.baseUrl, a.keys.member, r.body.id);
  return r.body.id;
}

beforeAll(async () => {
  s = await startStack({ workers: true });
  a = await makeTenant(s.container, 'gate a', 'org_gate_a');
  b = await makeTenant(s.container, 'gate b', 'org_gate_b');
  ds = await makeDataset(s.container, a.id, items(10, (i) => i < 8));
  exact = (await makeEval(s.container, a.id)).evalVersionId;
  narrower = (await makeEval(s.container, a.id, { type: 'regex', pattern: '^answer [0-4]$' })).evalVersionId;
  erroring = (await makeEval(s.container, a.id, { type: 'numeric_diff' })).evalVersionId;
  baseRun = await finishedRun(exact, { name: 'main', metadata: { branch: 'main' } });
  headRun = await finishedRun(narrower, { name: 'pr-1', metadata: { branch: 'pr-1' } });
  errorRun = await finishedRun(erroring);
}, 120_000);

afterAll(async () => {
  await s?.close();
});

describe('gateEvalRun', () => {
  it('passes a run that meets the policy, with the figures it checked', async () => {
    const r = await gate(baseRun, { policy: { min_pass_rate: 0.8, max_errors: 0 } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({
      run_id: baseRun,
      baseline_run_id: null,
      verdict: 'passed',
      reasons: [],
      checks: [
        { check: 'min_pass_rate', status: 'passed', actual: 0.8, limit: 0.8 },
        { check: 'max_errors', status: 'passed', actual: 0, limit: 0 },
      ],
      stats: { item_count: 10, passed: 8, failed: 2, errors: 0, pass_rate: 0.8, criteria: [], regressions: null, new_failures: null, significance: null },
    });
  });

  it('fails a run below the pass rate and, against a baseline by id, names the regressions and new failures', async () => {
    const r = await gate(headRun, { policy: { min_pass_rate: 0.6, max_regressions: 1, no_new_failures: true }, baseline: { run_id: baseRun } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.verdict).toBe('failed');
    expect(r.body.baseline_run_id).toBe(baseRun);
    expect(r.body.stats).toMatchObject({ passed: 5, failed: 5, pass_rate: 0.5, regressions: 3, new_failures: 3 });
    expect(r.body.checks.map((c) => [c.check, c.status, c.actual])).toEqual([
      ['min_pass_rate', 'failed', 0.5],
      ['max_regressions', 'failed', 3],
      ['no_new_failures', 'failed', 3],
    ]);
    expect(r.body.reasons).toEqual([
      'pass rate 50 % is below 60 % (5 of 10 passed)',
      `3 items scored lower than in baseline run ${baseRun} (at most 1 allowed)`,
      `3 items that passed in baseline run ${baseRun} failed or errored in this run`,
    ]);
  });

  it('finds the baseline by label (latest completed run of the dataset), and skips comparison checks when there is none', async () => {
    const byLabel = await gate(headRun, { policy: { max_regressions: 3 }, baseline: { metadata: { branch: 'main' } } });
    expect(byLabel.body).toMatchObject({ verdict: 'passed', baseline_run_id: baseRun, stats: { regressions: 3 } });
    const none = await gate(headRun, { policy: { no_new_failures: true, min_pass_rate: 0.5 }, baseline: { name: 'no-such-label' } });
    expect(none.body).toMatchObject({
      verdict: 'passed',
      baseline_run_id: null,
      checks: [
        { check: 'min_pass_rate', status: 'passed' },
        { check: 'no_new_failures', status: 'skipped', actual: null },
      ],
    });
    // the run is never its own baseline: the newest 'pr-1' run is the head itself
    const self = await gate(headRun, { policy: { max_regressions: 0 }, baseline: { name: 'pr-1' } });
    expect(self.body.baseline_run_id).toBeNull();
  });

  it('counts errors as failures unless told not to', async () => {
    const strict = await gate(errorRun, { policy: { min_pass_rate: 0.5, max_errors: 0 } });
    expect(strict.body).toMatchObject({ verdict: 'failed', stats: { errors: 10, pass_rate: 0 } });
    expect(strict.body.reasons).toEqual(['pass rate 0 % is below 50 % (0 of 10 passed)', '10 items ended in error (at most 0 allowed)']);
    const lenient = await gate(errorRun, { policy: { min_pass_rate: 0.5, errors_as_failures: false } });
    expect(lenient.body).toMatchObject({ verdict: 'failed', reasons: ['no item was scored'], stats: { pass_rate: null } });
  });

  it('is pending while the run has not ended, fails a run that ended failed, and refuses a baseline that has not ended', async () => {
    const em = s.container.orm.em.fork();
    // the statuses are set by hand: a 10-item run ends before a request could catch it running
    await sql(em, `update eval_runs set status = 'failed', error_message = 'canceled' where id = ?`, [errorRun]);
    await sql(em, `update eval_runs set status = 'running' where id = ?`, [baseRun]);
    try {
      const failed = await gate(errorRun, { policy: {} });
      expect(failed.body).toMatchObject({ verdict: 'failed', reasons: ['the run ended failed: canceled'], checks: [] });
      const running = await gate(baseRun, { policy: { min_pass_rate: 0.1 } });
      expect(running.body).toMatchObject({ verdict: 'pending', checks: [], reasons: ['the run is running (10 of 10 items scored)'] });
      const conflict = await gate(headRun, { policy: { max_regressions: 0 }, baseline: { run_id: baseRun } });
      expect(conflict.status).toBe(409);
      expect(conflict.body).toEqual({ error: expect.stringMatching(/baseline run .* is running/) });
    } finally {
      await sql(em, `update eval_runs set status = 'completed', error_message = null where id in (?, ?)`, [errorRun, baseRun]);
    }
  });

  it('works over tRPC with the same verdict', async () => {
    const client = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `${s.baseUrl}/trpc`, headers: () => ({ authorization: `Bearer ${a.keys.viewer}` }) })],
    });
    const v = await client.gateEvalRun.mutate({ id: headRun, policy: { min_pass_rate: 0.5 }, baseline: { run_id: baseRun } });
    expect(v).toMatchObject({ verdict: 'passed', baseline_run_id: baseRun, stats: { regressions: 3 } });
  });

  it('refuses bad policies and baselines with { error }, and other tenants with 404', async () => {
    const bad: unknown[] = [
      {},
      { policy: { min_pass_rate: 1.5 } },
      { policy: { max_errors: -1 } },
      { policy: { unknown_check: true } },
      { policy: {}, baseline: {} },
      { policy: {}, baseline: { run_id: baseRun, name: 'main' } },
      { policy: {}, baseline: { run_id: 'not-a-uuid' } },
      { policy: {}, baseline: { run_id: headRun } },
      { policy: {}, baseline: { metadata: { big: 'x'.repeat(5_000) } } },
    ];
    for (const body of bad) {
      const r = await gate(headRun, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.body).toEqual({ error: expect.any(String) });
    }
    const foreign = await gate(headRun, { policy: {} }, b.keys.viewer);
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ error: expect.any(String) });
    const foreignBaseline = await api(s.baseUrl, 'POST', `/v1/eval-runs/${headRun}/gate`, a.keys.viewer, { policy: {}, baseline: { run_id: '00000000-0000-4000-8000-000000000000' } });
    expect(foreignBaseline.status).toBe(404);
  });
});

describe('gateEvalRun under a hostile caller', () => {
  it('counts against the write limits, so a loop of gates gets 429 { error } with Retry-After, not the database', async () => {
    const limited = await startStack({ env: { RATE_LIMIT_KEY_WRITES_PER_MINUTE: '3' } });
    try {
      const t = await makeTenant(limited.container, 'gate limits', 'org_gate_limits');
      const d = await makeDataset(limited.container, t.id, items(2));
      const e = (await makeEval(limited.container, t.id)).evalVersionId;
      const run = await api<{ id: string }>(limited.baseUrl, 'POST', `/v1/datasets/${d.datasetId}/runs`, t.keys.member, { eval_version_id: e });
      const answers = [];
      for (let i = 0; i < 5; i++) {
        answers.push(await api(limited.baseUrl, 'POST', `/v1/eval-runs/${run.body.id}/gate`, t.keys.viewer, { policy: { min_pass_rate: 1 } }));
      }
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
      expect(answers[0]?.body).toMatchObject({ verdict: 'pending' });
      expect(answers[4]?.body).toEqual({ error: expect.any(String) });
    } finally {
      await limited.close();
    }
  });
});
