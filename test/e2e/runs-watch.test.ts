/**
 * `cli runs:watch` as a real process against a served stack: it follows a
 * slow run over HTTP, draws progress on stderr, prints the final run as one
 * JSON object on stdout, and exits 0 only when the run completed. It is given
 * unreachable PostgreSQL and Redis addresses to prove it needs neither.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';
import { enqueueRunStart, insertPendingRun } from '../../domain/eval-runs/eval-run.service.ts';
import { freePort } from '../helpers/processes.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { api, scheduleRun, waitForProgress } from '../helpers/runs.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NO_SERVICES = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1' };

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function watch(args: string[], env: Record<string, string> = {}): { exited: Promise<Exit>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/cli.ts', 'runs:watch', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...NO_SERVICES, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return { exited: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))), stderr: () => stderr };
}

/** stdout is exactly one JSON object on one line. */
function finalRun(out: Exit): EvalRunDto {
  expect(out.stdout.endsWith('\n')).toBe(true);
  expect(out.stdout.trim().split('\n')).toHaveLength(1);
  return JSON.parse(out.stdout) as EvalRunDto;
}

/**
 * A run that waits, pending and not enqueued, until the watcher has drawn its
 * first line; only then do the workers get it. Starting a process takes
 * seconds on a busy machine, and the watch must begin before the run ends.
 */
async function watchedRun(w: { stderr: () => string }, runId: string): Promise<void> {
  await waitFor(async () => w.stderr().includes('pending'), { timeoutMs: 60_000, what: `the watcher's first line: ${w.stderr()}` });
  expect(await enqueueRunStart(s.container, runId)).toBe(true);
}

let s: Stack;
let t: TenantFixture;
let dataset: string;
let evalVersion: string;
beforeAll(async () => {
  // 40 items, 2 per chunk, one chunk at a time, 150 ms each: about three seconds to watch.
  s = await startStack({ workers: true, env: { CHUNK_SIZE: '2', WORKER_CONCURRENCY: '1', EVALGATE_FAULT: 'chunk-delay-ms=150', RUN_WATCH_INTERVAL_MS: '100' } });
  t = await makeTenant(s.container);
  dataset = (await makeDataset(s.container, t.id, items(40, (i) => i % 2 === 0))).datasetId;
  evalVersion = (await makeEval(s.container, t.id)).evalVersionId;
});
afterAll(async () => s?.close());

describe('runs:watch', () => {
  it('draws progress until the run completes, prints it as JSON and exits 0', async () => {
    const run = await insertPendingRun(s.container.orm.em.fork(), t.id, dataset, evalVersion);
    const w = watch([run.id, '--url', s.baseUrl, '--key', t.keys.viewer]);
    await watchedRun(w, run.id);
    const out = await w.exited;
    expect(out.code, out.stderr).toBe(0);
    const final = finalRun(out);
    expect(final).toMatchObject({ id: run.id, status: 'completed', completed_count: 40, passed_count: 20 });
    const lines = out.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^\[#{24}\] 40\/40 100\.0% · pass 50\.0% · .*completed$/);
    expect(out.stderr).toMatch(/items\/s/);
  });

  it('exits non-zero with the failed run on stdout when the run is canceled (key and URL from the environment)', async () => {
    const run = await insertPendingRun(s.container.orm.em.fork(), t.id, dataset, evalVersion);
    const w = watch([run.id], { EVALGATE_URL: s.baseUrl, EVALGATE_API_KEY: t.keys.viewer });
    await watchedRun(w, run.id);
    await waitForProgress(s.baseUrl, t.keys.member, run.id, 0.1);
    expect((await api(s.baseUrl, 'POST', `/v1/eval-runs/${run.id}/cancel`, t.keys.member)).status).toBe(202);
    const out = await w.exited;
    expect(out.code, out.stderr).toBe(1);
    expect(finalRun(out)).toMatchObject({ id: run.id, status: 'failed', error_message: 'canceled' });
    expect(out.stderr).toContain(`run ${run.id} failed: canceled`);
  });

  it('says what is wrong on stderr, with nothing on stdout and a non-zero code', async () => {
    const other = await makeTenant(s.container, 'other');
    const run = await scheduleRun(s.baseUrl, t.keys.member, dataset, evalVersion);
    const closedPort = await freePort();
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [[run.id, '--url', s.baseUrl, '--key', 'tl_nope'], {}, 1, /error: malformed API key|unknown or revoked API key/],
      [[run.id, '--url', s.baseUrl, '--key', other.keys.owner], {}, 1, new RegExp(`error: eval run ${run.id} not found`)],
      [[run.id, '--url', s.baseUrl], {}, 2, /key: pass --key/],
      [[run.id, '--url', `http://127.0.0.1:${closedPort}`, '--key', t.keys.owner], {}, 1, new RegExp(`error: cannot reach http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED`)],
    ];
    const results = await Promise.all(cases.map(([args, env]) => watch(args, env).exited));
    for (const [i, out] of results.entries()) {
      const [args, , code, message] = cases[i] as (typeof cases)[number];
      expect(out.code, args.join(' ')).toBe(code);
      expect(out.stdout, args.join(' ')).toBe('');
      expect(out.stderr, args.join(' ')).toMatch(message);
    }
  });
});
