/**
 * `@evalgate/client` as an app gets it: built (scripts/build-client.ts into a
 * folder under test-artifacts/), `npm pack`ed, installed from the tarball into
 * a fresh strict NodeNext project outside the repository (no
 * allowImportingTsExtensions, skipLibCheck false), where the project's own tsc
 * typechecks a query, a mutation, a subscription, a REST call and the error
 * checks (with `@ts-expect-error` lines, so the types are real), and plain
 * `node` runs the compiled app against a live evalgate.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, runNode } from '../helpers/processes.ts';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startStack, uniqueName, type Stack } from '../helpers/stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// The package is built under the repository (its build check resolves @trpc/server from node_modules);
// the app lives outside it, so nothing of the repository's node_modules can leak into it.
const PKG = join(ROOT, 'test-artifacts', uniqueName('client-package'));
const APP = mkdtempSync(join(tmpdir(), 'evalgate-app-'));

/** The app, written as a user of the package would; typechecked by its own tsc, then run by plain node. */
const APP_TS = `
import { createEvalgateClient, isEvalgateError, TRPCClientError, type EvalgateClient } from '@evalgate/client';
import { createEvalgateRestClient, type components } from '@evalgate/client/rest';

type EvalRun = components['schemas']['EvalRun'];

const [url, apiKey, datasetId, evalVersionId] = process.argv.slice(2) as [string, string, string, string];
const client = createEvalgateClient({ url, apiKey });
const rest = createEvalgateRestClient({ url, apiKey });

// mutation
const scheduled = await client.scheduleEvalRun.mutate({ id: datasetId, eval_version_id: evalVersionId });
const status: 'pending' | 'running' | 'completed' | 'failed' = scheduled.status;

// subscription: every state of the run until it ends
const seen: { status: string; completed_count: number }[] = [];
await new Promise<void>((resolve, reject) => {
  const sub = client.watchEvalRun.subscribe(
    { id: scheduled.id },
    {
      onData: (run) => seen.push({ status: run.status, completed_count: run.completed_count }),
      onError: (err) => {
        sub.unsubscribe();
        reject(err);
      },
      onComplete: () => resolve(),
    },
  );
});

// query
const page = await client.listEvalRuns.query({ id: datasetId });
const got = await client.getEvalRun.query({ id: scheduled.id });

// REST
const read = await rest.GET('/v1/eval-runs/{id}', { params: { path: { id: scheduled.id } } });
const restRun: EvalRun | undefined = read.data;
const missing = await rest.GET('/v1/eval-runs/{id}', { params: { path: { id: '00000000-0000-4000-8000-000000000000' } } });

// errors
async function failure(p: Promise<unknown>) {
  try {
    await p;
    return { thrown: false };
  } catch (err) {
    return {
      thrown: true,
      instanceOfTRPCClientError: err instanceof TRPCClientError,
      isEvalgateError: isEvalgateError(err),
      code: isEvalgateError(err) ? err.data?.code : undefined,
      httpStatus: isEvalgateError(err) ? err.data?.httpStatus : undefined,
      message: err instanceof Error ? err.message : String(err),
    };
  }
}
const notFound = await failure(client.getEvalRun.query({ id: '00000000-0000-4000-8000-000000000000' }));
const badRequest = await failure(client.getEvalRun.query({ id: 'not-a-uuid' }));

process.stdout.write(JSON.stringify({
  scheduled: { id: scheduled.id, status, item_count: scheduled.item_count },
  seen,
  listed: page.data.map((r) => r.id),
  got: { id: got.id, status: got.status, completed_count: got.completed_count, passed_count: got.passed_count },
  rest: { status: read.response.status, id: restRun?.id, runStatus: restRun?.status },
  restMissing: { status: missing.response.status, error: missing.error?.error },
  notFound,
  badRequest,
}));

// Never called: these lines prove the app is typechecked against the real router and document.
export async function misuse(c: EvalgateClient) {
  // @ts-expect-error id is a string
  await c.getEvalRun.query({ id: 123 });
  // @ts-expect-error eval_version_id is required
  await c.scheduleEvalRun.mutate({ id: 'x' });
  // @ts-expect-error no such procedure
  await c.noSuchProcedure.query();
  const run = await c.getEvalRun.query({ id: 'x' });
  // @ts-expect-error a run's status is not a number
  const n: number = run.status;
  // @ts-expect-error no such path in the document
  await rest.GET('/v1/no-such-path');
  return n;
}
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    // DOM: @trpc/client's own declarations name RequestInfo, which @types/node does not declare.
    lib: ['ES2023', 'DOM'],
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: false,
    outDir: 'dist',
  },
  include: ['app.ts'],
};

/** Every installed package (a folder with a package.json) under a node_modules, nested ones included. */
function installedPackages(nodeModules: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const dirs = e.name.startsWith('@') ? readdirSync(join(nodeModules, e.name)).map((n) => join(e.name, n)) : [e.name];
    for (const d of dirs) {
      if (!existsSync(join(nodeModules, d, 'package.json'))) continue;
      out.push(d);
      if (existsSync(join(nodeModules, d, 'node_modules'))) out.push(...installedPackages(join(nodeModules, d, 'node_modules')).map((n) => `${d}/node_modules/${n}`));
    }
  }
  return out;
}

describe('the @evalgate/client package', () => {
  let s: Stack;
  let t: TenantFixture;
  let tarball: string;

  beforeAll(async () => {
    mkdirSync(PKG, { recursive: true });
    const b = await runNode(['--import', 'tsx', 'scripts/build-client.ts', '--out-dir', join(PKG, 'dist')], {});
    expect(b.code, b.stderr + b.stdout).toBe(0);
    copyFileSync(join(ROOT, 'client/package.json'), join(PKG, 'package.json'));
    const packed = await runCommand('npm', ['pack', '--json', '--pack-destination', APP], {}, PKG);
    expect(packed.code, packed.stderr).toBe(0);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    expect(info!.files.map((f) => f.path).sort()).toEqual([
      'dist/app-router.d.ts',
      'dist/index.d.ts',
      'dist/index.js',
      'dist/openapi-types.d.ts',
      'dist/rest.d.ts',
      'dist/rest.js',
      'package.json',
    ]);
    tarball = join(APP, info!.filename);
    s = await startStack({ workers: true, env: { CHUNK_SIZE: '4' } });
    t = await makeTenant(s.container);
  }, 180_000);

  afterAll(async () => {
    rmSync(PKG, { recursive: true, force: true });
    rmSync(APP, { recursive: true, force: true });
    await s?.close();
  });

  it('installs into a fresh project with a small tree: no server, no ORM, no queue', async () => {
    writeFileSync(join(APP, 'package.json'), `${JSON.stringify({ name: 'evalgate-app', private: true, type: 'module' }, null, 2)}\n`);
    const deps = [tarball, 'typescript@5.9.3', '@types/node@20.19.43'];
    // From the npm cache; --offline needs the registry documents cached too, which `npm ci` does not leave.
    let inst = await runCommand('npm', ['install', '--offline', '--no-audit', '--no-fund', ...deps], {}, APP);
    if (inst.code !== 0) inst = await runCommand('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...deps], {}, APP);
    expect(inst.code, inst.stderr).toBe(0);

    const installed = installedPackages(join(APP, 'node_modules'));
    expect(installed).toEqual(expect.arrayContaining(['@evalgate/client', '@trpc/client', '@trpc/server', 'eventsource', 'openapi-fetch']));
    expect(installed.length, installed.join(', ')).toBeLessThan(15);
    expect(installed.filter((p) => /fastify|bullmq|ioredis|@mikro-orm|^pg$|zod|tsx/.test(p))).toEqual([]);
  }, 120_000);

  it("typechecks a query, a mutation, a subscription and a REST call with the app's own strict tsc", async () => {
    writeFileSync(join(APP, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
    writeFileSync(join(APP, 'app.ts'), APP_TS);
    const tsc = await runCommand(process.execPath, [join(APP, 'node_modules/typescript/bin/tsc'), '-p', '.'], {}, APP);
    expect(tsc.code, tsc.stdout + tsc.stderr).toBe(0);
    expect(existsSync(join(APP, 'dist/app.js'))).toBe(true);
  }, 120_000);

  it('runs under plain node against a live evalgate, and its errors are its own TRPCClientError', async () => {
    const ds = await makeDataset(s.container, t.id, items(8, (i) => i < 5));
    const ev = await makeEval(s.container, t.id);
    const app = await runCommand(process.execPath, ['dist/app.js', s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId], {}, APP);
    expect(app.code, app.stderr).toBe(0);
    const out = JSON.parse(app.stdout) as Record<string, unknown> & { seen: { status: string; completed_count: number }[]; scheduled: { id: string } };

    expect(out.scheduled).toMatchObject({ status: 'pending', item_count: 8 });
    expect(out.seen.at(-1)).toEqual({ status: 'completed', completed_count: 8 });
    expect(out.listed).toContain(out.scheduled.id);
    expect(out.got).toEqual({ id: out.scheduled.id, status: 'completed', completed_count: 8, passed_count: 5 });
    expect(out.rest).toEqual({ status: 200, id: out.scheduled.id, runStatus: 'completed' });
    expect(out.restMissing).toMatchObject({ status: 404, error: expect.stringContaining('not found') });
    expect(out.notFound).toMatchObject({ thrown: true, instanceOfTRPCClientError: true, isEvalgateError: true, code: 'NOT_FOUND', httpStatus: 404 });
    expect(out.badRequest).toMatchObject({ thrown: true, instanceOfTRPCClientError: true, isEvalgateError: true, code: 'BAD_REQUEST', httpStatus: 400 });
  }, 120_000);
});
