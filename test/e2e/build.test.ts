/**
 * The production build (`npm run build`): compiled into a temporary folder under test-artifacts/, the
 * compiled server in `all` mode creates and migrates a fresh database, answers
 * /healthz and /readyz and scores the demo run (so the .lua scripts and the
 * evaluator thread entry came along), and the compiled CLI works. The rest of
 * the suite runs from the sources and needs no build.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAndCleanUp, runNode, startEvalgateApi, type EvalgateProcess } from '../helpers/processes.ts';
import { scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { testEnv } from '../helpers/stack.ts';
import pg from 'pg';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Inside the repository (test-artifacts/ is git-ignored) so that the compiled code finds node_modules/.
mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
const OUT = mkdtempSync(join(ROOT, 'test-artifacts', 'build-'));

const env = testEnv({ LOG_LEVEL: 'warn' });
const procs: EvalgateProcess[] = [];

afterAll(async () => {
  await killAndCleanUp(procs, env);
  rmSync(OUT, { recursive: true, force: true });
});

describe('production build', () => {
  beforeAll(async () => {
    const b = await runNode(['--import', 'tsx', 'scripts/build.ts', '--out-dir', OUT], {});
    expect(b.code, b.stderr + b.stdout).toBe(0);
  }, 180_000);

  it('emits JS for the server and the CLI, with the assets they read at run time', () => {
    for (const f of [
      'server/main.js',
      'server/cli.js',
      'server/migrations/index.js',
      'server/rate-limit.consume-writes-2.lua',
      'domain/evaluators/llm-judge/limiter-round-4.lua',
      'domain/evaluators/llm-judge/limiter-cooldown-1.lua',
      'domain/evaluators/evaluator-thread.boot.mjs',
      'domain/evaluators/evaluator-thread.worker.js',
    ]) {
      expect(existsSync(join(OUT, f)), f).toBe(true);
    }
  });

  it('the compiled server (`all`) migrates a fresh database, is healthy and ready, and scores the demo run', async () => {
    const demo = await runNode([join(OUT, 'server/cli.js'), 'demo'], env);
    expect(demo.code, demo.stderr).toBe(0);
    const ids = JSON.parse(demo.stdout) as Record<string, string>;

    const { proc: p, baseUrl } = await startEvalgateApi({ ...env, LOG_LEVEL: 'info' }, { mode: 'all', compiledMain: join(OUT, 'server/main.js'), onSpawn: (proc) => procs.push(proc) });
    expect((await fetch(`${baseUrl}/healthz`)).status).toBe(200);
    const ready = { body: (await (await fetch(`${baseUrl}/readyz`)).json()) as unknown };
    expect(ready.body).toMatchObject({ status: 'ok', checks: { migrations: 'ok' } });

    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    try {
      const rows = (await client.query<{ name: string }>('select name from mikro_orm_migrations order by id')).rows.map((r) => r.name);
      expect(rows).toContain('Migration20261125000000Initial');
    } finally {
      await client.end();
    }

    const r = await scheduleRun(baseUrl, ids.api_key as string, ids.dataset_id as string, ids.eval_version_id as string);
    const done = await waitForRunEnd(baseUrl, ids.api_key as string, r.id);
    expect(done).toMatchObject({ status: 'completed', item_count: 10, passed_count: 6, error_count: 0 });
    p.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  }, 120_000);

  it('the compiled CLI runs and exits 0 (tenants:list)', async () => {
    const t = await runNode([join(OUT, 'server/cli.js'), 'tenants:list'], env);
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(t.stdout)).toMatchObject({ truncated: false });
  });
});
