/**
 * What an SDK author does with the served document: generate TypeScript types
 * from /openapi.json with openapi-typescript, typecheck code written against
 * them with the TypeScript compiler, then run that very code (openapi-fetch)
 * against the server: scheduleEvalRun → 202 and getEvalRun. A document the
 * generator or the compiler rejects fails here.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import openapiTS, { astToString, type OpenAPI3 } from 'openapi-typescript';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { items, makeDataset, makeEval, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startStack, uniqueName, type Stack } from '../helpers/stack.ts';

// Under the repository so the snippet resolves openapi-fetch from node_modules; test-artifacts/ is gitignored.
const DIR = fileURLToPath(new URL(`../../test-artifacts/${uniqueName('rest-sdk')}/`, import.meta.url));

/** Written against the generated `paths`, as an SDK user would; typechecked, then imported and run. */
const USAGE = `
import createClient from 'openapi-fetch';
import type { components, paths } from './evalgate-api.js';

type EvalRun = components['schemas']['EvalRun'];

export async function scheduleAndRead(baseUrl: string, apiKey: string, datasetId: string, evalVersionId: string) {
  const client = createClient<paths>({ baseUrl, headers: { authorization: \`Bearer \${apiKey}\` } });
  const scheduled = await client.POST('/v1/datasets/{id}/runs', {
    params: { path: { id: datasetId } },
    body: { eval_version_id: evalVersionId },
  });
  const run: EvalRun | undefined = scheduled.data;
  const status: 'pending' | 'running' | 'completed' | 'failed' | undefined = run?.status;
  const read = await client.GET('/v1/eval-runs/{id}', { params: { path: { id: run?.id ?? '' } } });
  const missing = await client.GET('/v1/eval-runs/{id}', { params: { path: { id: '00000000-0000-4000-8000-000000000000' } } });
  const message: string | undefined = missing.error?.error;
  return { scheduledStatus: scheduled.response.status, run, status, read: read.data, readStatus: read.response.status, missingStatus: missing.response.status, message };
}

export async function misuse(baseUrl: string) {
  const client = createClient<paths>({ baseUrl });
  // @ts-expect-error eval_version_id is required by the document
  await client.POST('/v1/datasets/{id}/runs', { params: { path: { id: 'x' } }, body: {} });
  // @ts-expect-error no such path in the document
  await client.GET('/v1/no-such-path');
  const r = await client.GET('/v1/eval-runs/{id}', { params: { path: { id: 'x' } } });
  // @ts-expect-error a run has no such field
  return r.data?.no_such_field;
}
`;

describe('an SDK generated from the served /openapi.json', () => {
  let s: Stack;
  let t: TenantFixture;
  beforeAll(async () => {
    s = await startStack({ workers: true });
    t = await makeTenant(s.container);
    mkdirSync(DIR, { recursive: true });
  });
  afterAll(async () => {
    rmSync(DIR, { recursive: true, force: true });
    await s?.close();
  });

  it('generates, typechecks and calls scheduleEvalRun and getEvalRun', async () => {
    const res = await fetch(`${s.baseUrl}/openapi.json`);
    expect(res.status).toBe(200);
    const document = (await res.json()) as OpenAPI3;
    writeFileSync(join(DIR, 'evalgate-api.d.ts'), astToString(await openapiTS(document)));
    writeFileSync(join(DIR, 'usage.ts'), USAGE);

    const program = ts.createProgram([join(DIR, 'usage.ts')], {
      strict: true,
      noEmit: true,
      noUncheckedIndexedAccess: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ['lib.es2023.d.ts'],
      types: ['node'],
      skipLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);

    const ds = await makeDataset(s.container, t.id, items(5, (i) => i !== 2));
    const ev = await makeEval(s.container, t.id);
    const usage = (await import(pathToFileURL(join(DIR, 'usage.ts')).href)) as { scheduleAndRead: (...a: string[]) => Promise<Record<string, unknown>> };
    const out = await usage.scheduleAndRead(s.baseUrl, t.keys.member, ds.datasetId, ev.evalVersionId);
    expect(out.scheduledStatus).toBe(202);
    expect(out.run).toMatchObject({ dataset_id: ds.datasetId, eval_version_id: ev.evalVersionId, status: 'pending', item_count: 5 });
    expect(out.readStatus).toBe(200);
    expect(out.read).toMatchObject({ id: (out.run as { id: string }).id, dataset_id: ds.datasetId, item_count: 5 });
    expect(out.missingStatus).toBe(404);
    expect(out.message).toMatch(/not found/);
  });
});
