/**
 * `cli report` against a live evalgate, opened in headless Chromium (Debian's
 * /usr/bin/chromium via playwright-core): the page's charts are drawn (bars of
 * the histogram, dots of the paired scatter), nothing is loaded from anywhere,
 * the console is clean, a tenant's hostile item text is shown as text, and a
 * screenshot is left in test-artifacts/report.png.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');
const dir = mkdtempSync(join(tmpdir(), 'evalgate-report-'));

let s: Stack;
let a: TenantFixture;
let browser: Browser;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1', EVALGATE_URL: s.baseUrl, EVALGATE_API_KEY: a.keys.member },
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
  a = await makeTenant(s.container);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

describe('cli report', () => {
  it('writes one self-contained HTML file whose charts Chromium draws, with a clean console and nothing fetched', async () => {
    const hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>';
    const ds = await makeDataset(s.container, a.id, Array.from({ length: 60 }, (_, i) => ({ input: i === 0 ? hostile : `q${i}`, expected_output: `a${i}`, output: i % 3 === 0 ? `wrong${i}` : `a${i}` })));
    const exact = await makeEval(s.container, a.id, { type: 'exact_match' });
    const fuzzy = await makeEval(s.container, a.id, { type: 'levenshtein', threshold: 0.5 });
    const base = await waitForRunEnd(s.baseUrl, a.keys.member, (await scheduleRun(s.baseUrl, a.keys.member, ds.datasetId, fuzzy.evalVersionId)).id);
    const head = await waitForRunEnd(s.baseUrl, a.keys.member, (await scheduleRun(s.baseUrl, a.keys.member, ds.datasetId, exact.evalVersionId)).id);
    const out = join(dir, 'report.html');
    const r = await cli(['report', head.id, '--baseline', base.id, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ out, items: 60 });
    const html = readFileSync(out, 'utf8');
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;img src=x');

    const context = await browser.newContext();
    const fetched: string[] = [];
    await context.route((url) => url.protocol !== 'file:' && url.protocol !== 'data:', async (route) => {
      fetched.push(route.request().url());
      await route.abort();
    });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(pathToFileURL(out).href);
    // the histogram has its bars (some with height), the scatter a dot per paired item
    const bars = await page.locator('svg.histogram rect.bar').count();
    expect(bars).toBe(10);
    const drawn = await page.locator('svg.histogram rect.bar').evaluateAll((els) => els.filter((e) => (e as unknown as { getBBox(): { height: number } }).getBBox().height > 0).length);
    expect(drawn).toBeGreaterThanOrEqual(2);
    expect(await page.locator('svg.scatter circle.dot').count()).toBe(60);
    expect(await page.locator('svg.scatter circle.dot.down').count()).toBeGreaterThan(0);
    expect(await page.locator('#pass-rate').textContent()).toBe('66.7 %');
    expect(['worse', 'no significant difference']).toContain(await page.locator('#verdict').textContent());
    expect(await page.getByText(hostile, { exact: false }).count()).toBeGreaterThan(0);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    expect(problems).toEqual([]);
    expect(fetched).toEqual([]);
    await context.close();

    // no baseline: the run alone; a run that does not exist: exit 2 with the API's { error }
    const alone = await cli(['report', head.id, '--out', join(dir, 'alone.html')]);
    expect(alone.code, alone.stderr).toBe(0);
    expect(readFileSync(join(dir, 'alone.html'), 'utf8')).not.toContain('svg class="chart scatter"');
    const missing = await cli(['report', '0190a5b4-0000-7000-8000-000000000000', '--out', join(dir, 'x.html')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/404/);
  }, 120_000);

  it('shows each criterion of a run with several criteria, in its table and as a drawn bar', async () => {
    // exact passes 40 of 60 (every third output is wrong); has (contains the expected) also 40; nonempty (regex .) all 60
    const ds = await makeDataset(s.container, a.id, Array.from({ length: 60 }, (_, i) => ({ input: `q${i}`, expected_output: `a${i}`, output: i % 3 === 0 ? `wrong${i}` : `a${i}` })));
    const ev = await makeEval(s.container, a.id, {
      criteria: [
        { name: 'exact', evaluator: { type: 'exact_match' } },
        { name: 'nonempty', evaluator: { type: 'regex', pattern: '.' } },
      ],
    });
    // two repetitions: a deterministic evaluator agrees with itself, so pass@1 = pass^2 = the pass rate and the spread is 0
    const scheduled = await api<{ id: string }>(s.baseUrl, 'POST', `/v1/datasets/${ds.datasetId}/runs`, a.keys.member, { eval_version_id: ev.evalVersionId, repetitions: 2 });
    expect(scheduled.status).toBe(202);
    const run = await waitForRunEnd(s.baseUrl, a.keys.member, scheduled.body.id);
    const out = join(dir, 'criteria.html');
    const r = await cli(['report', run.id, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(pathToFileURL(out).href);
    const table = page.locator('h2:has-text("Pass rate per criterion") + table');
    const names = await table.locator('tr td:first-child').allTextContents();
    expect(names).toEqual(['exact', 'nonempty', 'item (weighted mean of the 2 criteria)']);
    const rates = await table.locator('tr td:nth-child(5)').allTextContents();
    expect(rates).toEqual(['66.7 %', '100.0 %', '66.7 %']);
    expect(await page.locator('#repetition-stats').textContent()).toBe('66.7 % / 66.7 % / 0.000');
    const widths = await page.locator('svg.criteria rect.bar').evaluateAll((els) => els.map((e) => (e as unknown as { getBBox(): { width: number } }).getBBox().width));
    expect(widths).toHaveLength(2);
    expect(widths[1]!).toBeGreaterThan(widths[0]!); // 100 % draws longer than 66.7 %
    expect(widths[0]!).toBeGreaterThan(0);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report-criteria.png'), fullPage: true });
    expect(problems).toEqual([]);
    await context.close();
  }, 120_000);
});
