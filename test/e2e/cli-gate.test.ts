/**
 * `cli gate` against a live evalgate: schedules a run, follows it, applies
 * the policy, writes JUnit (read back with a JUnit parser) and Markdown, and
 * exits 0 passed / 1 failed / 2 could not run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, type TestSuites } from 'junit2json';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { startStack, type Stack } from '../helpers/stack.ts';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NO_SERVICES = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1' };
const dir = mkdtempSync(join(tmpdir(), 'evalgate-gate-'));

let s: Stack;
let a: TenantFixture;
let ds: { datasetId: string };
let exact: string;
let narrower: string;

function gate(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return cli(['gate', ...args], env);
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...NO_SERVICES, EVALGATE_URL: s.baseUrl, EVALGATE_API_KEY: a.keys.member, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let fake: FakeLlm;

beforeAll(async () => {
  fake = await startFakeLlm();
  s = await startStack({ workers: true, env: { EVALGATE_PROVIDERS: JSON.stringify({ fake: { base_url: fake.url, concurrency: 8, rpm: 600_000, timeout_ms: 2_000 } }) } });
  a = await makeTenant(s.container, 'cli gate', 'org_cli_gate');
  ds = await makeDataset(s.container, a.id, items(10, (i) => i < 8));
  exact = (await makeEval(s.container, a.id)).evalVersionId;
  narrower = (await makeEval(s.container, a.id, { type: 'regex', pattern: '^answer [0-4]$' })).evalVersionId;
}, 60_000);

afterAll(async () => {
  await s?.close();
  await fake?.close();
});

describe('cli gate', () => {
  it('schedules and passes a run, writing JUnit (one testcase per item plus the gate) and Markdown', async () => {
    const junit = join(dir, 'main.xml');
    const markdown = join(dir, 'main.md');
    const out = await gate([
      '--dataset', ds.datasetId, '--eval-version', exact, '--name', 'main', '--metadata', '{"branch":"main"}',
      '--idempotency-key', 'ci-job-1', '--policy', '{"min_pass_rate":0.8}', '--junit', junit, '--markdown', markdown,
    ]);
    expect(out.code, out.stderr).toBe(0);
    const verdict = JSON.parse(out.stdout) as { verdict: string; run_id: string };
    expect(verdict.verdict).toBe('passed');
    expect(out.stderr).toMatch(/gate passed/);

    const report = (await parse(readFileSync(junit, 'utf8'))) as TestSuites;
    const suite = report.testsuite?.[0];
    expect(suite?.testcase).toHaveLength(11);
    expect(suite?.tests).toBe(11);
    expect(suite?.failures).toBe(2);
    const failed = (suite?.testcase ?? []).filter((t) => t.failure);
    expect(failed).toHaveLength(2);
    expect(suite?.testcase?.find((t) => t.name === 'gate')?.failure).toBeUndefined();
    expect(readFileSync(markdown, 'utf8')).toMatch(/^### ✅ evalgate: passed — main\n/);

    // the same CI job again (same Idempotency-Key): the same run, not a second one
    const again = await gate(['--dataset', ds.datasetId, '--eval-version', exact, '--name', 'main', '--metadata', '{"branch":"main"}', '--idempotency-key', 'ci-job-1', '--policy', '{}']);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { run_id: string }).run_id).toBe(verdict.run_id);
  });

  it('fails a run with new failures against the labelled baseline (exit 1), with the reasons in JUnit and Markdown', async () => {
    const junit = join(dir, 'pr.xml');
    const markdown = join(dir, 'pr.md');
    const out = await gate([
      '--dataset', ds.datasetId, '--eval-version', narrower, '--name', 'pr-7',
      '--policy', '{"no_new_failures":true}', '--baseline-name', 'main', '--junit', junit, '--markdown', markdown,
    ]);
    expect(out.code, out.stderr).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ verdict: 'failed', stats: { new_failures: 3 } });
    const report = (await parse(readFileSync(junit, 'utf8'))) as TestSuites;
    const gateCase = report.testsuite?.[0]?.testcase?.find((t) => t.name === 'gate');
    expect(gateCase?.failure?.[0]?.inner).toMatch(/3 items that passed in baseline run .* failed or errored in this run/);
    const md = readFileSync(markdown, 'utf8');
    expect(md).toMatch(/^### ❌ evalgate: failed — pr-7\n/);
    expect(md).toMatch(/\| no_new_failures \| failed \| 3 \| 0 \|/);
  });

  it('gates each criterion of a run with several criteria, with a JUnit testcase per item and criterion', async () => {
    // exact passes items 0–7, shape (answer 0–4) items 0–4; "all" passes 0–4
    const criteria = (await makeEval(s.container, a.id, {
      criteria: [{ name: 'exact', evaluator: { type: 'exact_match' } }, { name: 'shape', evaluator: { type: 'regex', pattern: '^answer [0-4]$' } }],
    })).evalVersionId;
    const junit = join(dir, 'criteria.xml');
    const markdown = join(dir, 'criteria.md');
    const out = await gate([
      '--dataset', ds.datasetId, '--eval-version', criteria,
      '--policy', '{"min_criterion_pass_rate":{"exact":0.8,"shape":0.6}}', '--junit', junit, '--markdown', markdown,
    ]);
    expect(out.code, out.stderr).toBe(1);
    const verdict = JSON.parse(out.stdout) as { run_id: string; verdict: string; reasons: string[]; checks: unknown[]; stats: { criteria: unknown[] } };
    expect(verdict.stats.criteria).toEqual([
      { name: 'exact', passed: 8, failed: 2, errors: 0, pass_rate: 0.8 },
      { name: 'shape', passed: 5, failed: 5, errors: 0, pass_rate: 0.5 },
    ]);
    expect(verdict.checks).toEqual([
      { check: 'min_criterion_pass_rate', criterion: 'exact', status: 'passed', actual: 0.8, limit: 0.8 },
      { check: 'min_criterion_pass_rate', criterion: 'shape', status: 'failed', actual: 0.5, limit: 0.6 },
    ]);
    expect(verdict.reasons).toEqual(['criterion shape: pass rate 50 % is below 60 % (5 of 10 passed)']);

    const report = (await parse(readFileSync(junit, 'utf8'))) as TestSuites;
    const suite = report.testsuite?.[0];
    expect(suite?.tests).toBe(31); // the gate, 10 items, 10 × 2 criteria
    expect(suite?.testcase).toHaveLength(31);
    expect(suite?.failures).toBe(1 + 5 + 2 + 5);
    const shape = (suite?.testcase ?? []).filter((t) => t.classname === 'evalgate.criteria.shape');
    expect(shape).toHaveLength(10);
    expect(shape.filter((t) => t.failure)).toHaveLength(5);
    expect((suite?.testcase ?? []).filter((t) => t.classname === 'evalgate.criteria.exact' && t.failure)).toHaveLength(2);
    const md = readFileSync(markdown, 'utf8');
    expect(md).toMatch(/\| shape \| 5 \| 5 \| 0 \| 50\.0 % \|/);
    expect(md).toMatch(/\| min_criterion_pass_rate \(shape\) \| failed \| 0\.5 \| 0\.6 \|/);

    // a criterion the run does not have is the caller's mistake: exit 2, named
    const unknown = await gate(['--policy', '{"min_criterion_pass_rate":{"tone":0.5}}', verdict.run_id]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no criterion "tone" \(its criteria: exact, shape\)/);
  });

  it('exits 2 when it cannot run: bad arguments, a refused request, an unreachable API', async () => {
    const usage = await gate(['--policy', 'not json', '00000000-0000-4000-8000-000000000000']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--policy must be JSON/);
    const refused = await gate(['--policy', '{"min_pass_rate":2}', '00000000-0000-4000-8000-000000000000']);
    expect(refused.code).toBe(2);
    const missing = await gate(['--policy', '{}', '00000000-0000-4000-8000-000000000000']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/gate could not run: .*404/);
    const down = await gate(['--policy', '{}', '00000000-0000-4000-8000-000000000000'], { EVALGATE_URL: 'http://127.0.0.1:1' });
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/gate could not run/);
  });
});

describe('cli with targets and exports', () => {
  it('gate --target generates the outputs it gates on; runs:export streams the results with their samples to a file and to stdout', async () => {
    const gen = await makeDataset(s.container, a.id, [
      { input: { question: 'q1' }, expected_output: 'Q1' },
      { input: { question: 'q2' }, expected_output: 'Q2' },
      { input: { question: 'q3' }, expected_output: 'nope' },
    ]);
    const target = { type: 'chat_completion', provider: 'fake', model: 'gen', messages: [{ role: 'user', content: '{{input.question}}' }] };
    const out = await gate(['--dataset', gen.datasetId, '--eval-version', exact, '--target', JSON.stringify(target), '--max-cost-usd', '1', '--policy', '{"min_pass_rate":0.6}']);
    expect(out.code, out.stderr).toBe(0);
    const verdict = JSON.parse(out.stdout) as { run_id: string; stats: { passed: number; failed: number } };
    expect(verdict.stats).toMatchObject({ passed: 2, failed: 1 });
    expect(fake.stats.log.filter((e) => e.kind === 'generate')).toHaveLength(3);

    const file = join(dir, 'export.jsonl');
    const exported = await cli(['runs:export', verdict.run_id, '--out', file]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ run_id: verdict.run_id, format: 'jsonl', rows: 3, out: file });
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { sample: { output: string } });
    expect(lines.map((l) => l.sample.output).sort()).toEqual(['Q1', 'Q2', 'Q3']);

    const csv = await cli(['runs:export', verdict.run_id, '--format', 'csv', '--status', 'failed']);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split('\r\n')[0]).toMatch(/^item_id,status,.*,sample_output,sample_error,sample_cached,sample_attempts,scores$/);
    expect(csv.stdout).toContain('"""Q3"""');
    expect(JSON.parse(csv.stderr.trim().split('\n').at(-1)!)).toMatchObject({ format: 'csv', rows: null });

    const refused = await cli(['runs:export', verdict.run_id, '--format', 'xml']);
    expect(refused.code).toBe(2);
    const missing = await cli(['runs:export', '0190a5b4-0000-7000-8000-000000000000']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/404/);
    const bad = await gate(['--dataset', gen.datasetId, '--eval-version', exact, '--target', '{"type":"chat_completion","provider":"nope","model":"m","messages":[{"role":"user","content":"x"}]}', '--policy', '{}']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"nope" is not configured/);
  }, 60_000);
});
