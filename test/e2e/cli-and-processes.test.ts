/**
 * Real processes: the CLI (one JSON object on stdout, errors on stderr with a
 * non-zero code) and `server/main.ts` in its three modes, against a fresh
 * database that the processes create themselves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAndCleanUp, runNode, spawnEvalgate, startEvalgateApi, type EvalgateProcess } from '../helpers/processes.ts';
import { api, scheduleRun, waitForRunEnd } from '../helpers/runs.ts';
import { testEnv } from '../helpers/stack.ts';

const cli = (args: string[], env: Record<string, string>) => runNode(['--import', 'tsx', 'server/cli.ts', ...args], env);

const env = testEnv({ LOG_LEVEL: 'warn', RECONCILE_INTERVAL_MS: '1000' });
const procs: EvalgateProcess[] = [];

afterAll(() => killAndCleanUp(procs, env));

describe('CLI', () => {
  let demo: Record<string, string>;
  beforeAll(async () => {
    const r = await cli(['demo'], env);
    expect(r.code, r.stderr).toBe(0);
    demo = JSON.parse(r.stdout) as Record<string, string>;
  });

  it('demo prints exactly the documented ids and a key, and stdout is one JSON object', async () => {
    expect(Object.keys(demo).sort()).toEqual(['api_key', 'dataset_id', 'dataset_version_id', 'eval_id', 'eval_version_id', 'tenant_id']);
    expect(demo.api_key).toMatch(/^tl_[0-9A-Za-z]{43}$/);
  });

  it('migrate, tenants:create, keys:create and keys:revoke', async () => {
    const m = await cli(['migrate'], env);
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ status: 'ok' });
    const t = await cli(['tenants:create', '--name', 'acme'], env);
    expect(t.code).toBe(0);
    const tenant = JSON.parse(t.stdout) as { id: string; name: string };
    expect(tenant).toEqual({ id: expect.any(String), name: 'acme' });
    const k = await cli(['keys:create', '--tenant', tenant.id], env);
    expect(k.code).toBe(0);
    const key = JSON.parse(k.stdout) as Record<string, string>;
    expect(key).toEqual({ id: expect.any(String), key: expect.stringMatching(/^tl_/), role: 'member', tenant_id: tenant.id });
    const v = await cli(['keys:create', '--tenant', tenant.id, '--role', 'viewer', '--name', 'ro'], env);
    expect(JSON.parse(v.stdout)).toMatchObject({ role: 'viewer' });
    const rv = await cli(['keys:revoke', '--id', key.id as string], env);
    expect(rv.code).toBe(0);
    expect(JSON.parse(rv.stdout)).toEqual({ id: key.id, revoked_at: expect.stringMatching(/^\d{4}-/) });
  });

  it('tenants:list and keys:list (--tenant filters; no key secret or hash is printed)', async () => {
    const t = await cli(['tenants:list'], env);
    expect(t.code, t.stderr).toBe(0);
    const tenants = JSON.parse(t.stdout) as { tenants: { id: string; name: string }[]; truncated: boolean };
    expect(tenants.truncated).toBe(false);
    expect(tenants.tenants).toContainEqual({ id: demo.tenant_id, name: 'demo', external_org_id: null, created_at: expect.stringMatching(/^\d{4}-/) });
    const k = await cli(['keys:list', '--tenant', demo.tenant_id as string], env);
    expect(k.code, k.stderr).toBe(0);
    expect(k.stdout).not.toContain(demo.api_key);
    expect(JSON.parse(k.stdout)).toEqual({
      keys: [
        {
          id: expect.any(String),
          tenant_id: demo.tenant_id,
          name: 'demo owner key',
          role: 'owner',
          key_prefix: (demo.api_key as string).slice(0, 7),
          created_at: expect.stringMatching(/^\d{4}-/),
          revoked_at: null,
        },
      ],
      truncated: false,
    });
    const other = await cli(['keys:list', '--tenant', '0190a0b0-0000-7000-8000-000000000009'], env);
    expect(JSON.parse(other.stdout)).toEqual({ keys: [], truncated: false });
    const all = JSON.parse((await cli(['keys:list'], env)).stdout) as { keys: { key_hash?: string; tenant_id: string }[] };
    expect(all.keys.some((x) => x.tenant_id === demo.tenant_id)).toBe(true);
    expect(all.keys.every((x) => !('key_hash' in x) && !('key' in x))).toBe(true);
  });

  it('fails with a message on stderr and a non-zero code, and nothing on stdout', async () => {
    const cases = [
      ['keys:create', '--tenant', 'nope'],
      ['keys:create', '--tenant', '0190a0b0-0000-7000-8000-000000000009'],
      ['keys:create', '--tenant', '0190a0b0-0000-7000-8000-000000000009', '--role', 'god'],
      ['nope'],
      ['keys:revoke'],
      ['keys:list', '--tenant', 'nope'],
      ['tenants:list', '--name', 'x'],
    ];
    const results = await Promise.all(cases.map((args) => cli(args, env)));
    for (const [i, r] of results.entries()) {
      expect(r.code, cases[i]?.join(' ')).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/error|usage/);
    }
  });

  it('`main.ts all` serves and scores the demo run: 6 of 10 pass', async () => {
    const { proc: p, baseUrl: base } = await startEvalgateApi({ ...env, LOG_LEVEL: 'info' }, { mode: 'all', onSpawn: (proc) => procs.push(proc) });
    const run = await scheduleRun(base, demo.api_key as string, demo.dataset_id as string, demo.eval_version_id as string);
    const done = await waitForRunEnd(base, demo.api_key as string, run.id);
    expect(done).toMatchObject({ status: 'completed', item_count: 10, completed_count: 10, passed_count: 6, failed_count: 4, error_count: 0, mean_score: 0.6 });
    const ready = await api(base, 'GET', '/readyz', demo.api_key as string);
    expect(ready.body).toMatchObject({ status: 'ok', checks: { workers: 'ok' } });
    p.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  });

  it('`main.ts api` and `main.ts worker` run apart and together finish a run', async () => {
    const { proc: apiProc, baseUrl: base } = await startEvalgateApi({ ...env, LOG_LEVEL: 'info' }, { onSpawn: (proc) => procs.push(proc) });
    const run = await scheduleRun(base, demo.api_key as string, demo.dataset_id as string, demo.eval_version_id as string);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await api<{ status: string }>(base, 'GET', `/v1/eval-runs/${run.id}`, demo.api_key as string)).body.status).toBe('pending');
    // WORKER_HTTP_PORT: the worker serves its own /metrics, /healthz, /readyz (port 0: it picks one and logs it)
    const worker = spawnEvalgate('worker', { ...env, LOG_LEVEL: 'info', WORKER_HTTP_PORT: '0', HOST: '127.0.0.1' });
    procs.push(worker);
    const done = await waitForRunEnd(base, demo.api_key as string, run.id, 30_000);
    expect(done.status).toBe('completed');
    const workerUrl = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(worker.output())?.[1];
    expect(workerUrl, worker.output().slice(-2_000)).toBeDefined();
    const metrics = await (await fetch(`${workerUrl}/metrics`)).text();
    // the items were scored in the worker process: its own counters say so (6 of the demo's 10 pass)
    expect(metrics).toMatch(/^evalgate_items_scored_total\{status="passed"\} 6$/m);
    expect(metrics).toMatch(/^evalgate_items_scored_total\{status="failed"\} 4$/m);
    const ready = await fetch(`${workerUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', migrations: 'ok', workers: 'ok' } });
    expect((await fetch(`${workerUrl}/v1/datasets`)).status).toBe(404);
    worker.kill('SIGTERM');
    apiProc.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
    expect((await apiProc.exited).code).toBe(0);
  });

  it('refuses to start with a bad variable, naming it', async () => {
    const p = spawnEvalgate('api', { ...env, PORT: 'eighty' });
    const exit = await p.exited;
    expect(exit.code).not.toBe(0);
    expect(p.output()).toMatch(/PORT/);
  });
});
