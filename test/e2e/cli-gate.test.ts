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

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NO_SERVICES = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1' };
const dir = mkdtempSync(join(tmpdir(), 'evalgate-gate-'));

let s: Stack;
let a: TenantFixture;
let ds: { datasetId: string };
let exact: string;
let narrower: string;

function gate(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'gate', ...args], {
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

beforeAll(async () => {
  s = await startStack({ workers: true });
  a = await makeTenant(s.container, 'cli gate', 'org_cli_gate');
  ds = await makeDataset(s.container, a.id, items(10, (i) => i < 8));
  exact = (await makeEval(s.container, a.id)).evalVersionId;
  narrower = (await makeEval(s.container, a.id, { type: 'regex', pattern: '^answer [0-4]$' })).evalVersionId;
}, 60_000);

afterAll(async () => {
  await s?.close();
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
