/**
 * Foundation: scheduleEvalRun and getEvalRun over REST and tRPC, against real
 * Postgres, Redis and HTTP: success bodies, every error, the role matrix,
 * tenant isolation, API keys (revocation) and session JWTs from a JWKS server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/_app.ts';
import { revokeApiKey } from '../../domain/tenants/tenant.service.ts';
import { jobIds } from '../../jobs/queues.ts';
import { makeDataset, makeEval, makeTenant, items, type TenantFixture } from '../helpers/factories.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

let stack: Stack;
let jwksServer: Server;
let jwtKey: jose.CryptoKey | Uint8Array;
let otherJwtKey: jose.CryptoKey | Uint8Array;
let a: TenantFixture;
let b: TenantFixture;
let dsA: { datasetId: string; versionId: string | null };
let evA: { evalId: string; evalVersionId: string };
let dsB: { datasetId: string };
let evB: { evalVersionId: string };

async function rest(method: string, path: string, opts: { key?: string; body?: unknown; rawBody?: string; contentType?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(`${stack.baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json as Record<string, unknown>, headers: res.headers };
}

function expectErrorBody(body: unknown, pattern?: RegExp) {
  expect(body).toEqual({ error: expect.any(String) });
  const message = (body as { error: string }).error;
  expect(message).not.toMatch(/at .+\.(ts|js):\d+/); // never a stack
  if (pattern) expect(message).toMatch(pattern);
}

function trpc(key?: string) {
  return createTRPCClient<AppRouter>({
    links: [httpBatchLink({ url: `${stack.baseUrl}/trpc`, headers: () => (key ? { authorization: `Bearer ${key}` } : {}) })],
  });
}

beforeAll(async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256');
  jwtKey = privateKey;
  otherJwtKey = (await jose.generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const port = (jwksServer.address() as AddressInfo).port;
  stack = await startStack({
    env: { JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, JWT_ISSUER: 'https://issuer.test', API_KEY_CACHE_TTL_MS: '1000' },
  });
  a = await makeTenant(stack.container, 'tenant a', 'org_a');
  b = await makeTenant(stack.container, 'tenant b', 'org_b');
  dsA = await makeDataset(stack.container, a.id, items(7));
  evA = await makeEval(stack.container, a.id);
  dsB = await makeDataset(stack.container, b.id, items(3));
  evB = await makeEval(stack.container, b.id);
});

afterAll(async () => {
  await stack?.close();
  await new Promise((r) => jwksServer?.close(r));
});

describe('scheduleEvalRun over REST', () => {
  it('answers 202 with the contract EvalRun and enqueues a run-start job whose id is the run id', async () => {
    const res = await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.member, body: { eval_version_id: evA.evalVersionId } });
    expect(res.status).toBe(202);
    const run = res.body;
    expect(Object.keys(run).sort()).toEqual(
      [
        'id', 'tenant_id', 'dataset_id', 'eval_version_id', 'status', 'item_count', 'completed_count', 'started_at', 'completed_at',
        'error_message', 'created_at', 'dataset_version_id', 'passed_count', 'failed_count', 'error_count', 'mean_score',
        'usage', 'cost_usd', 'name', 'metadata', 'target', 'outputs_from_run', 'cache', 'max_cost_usd', 'criteria',
        'repetitions', 'repetition_pass', 'sample_count', 'completed_samples', 'pass_at_1', 'pass_hat_n', 'mean_item_sd',
      ].sort(),
    );
    expect(run).toMatchObject({ target: { type: 'dataset_output' }, outputs_from_run: null, cache: true, max_cost_usd: null, criteria: [] });
    expect(run.id).toMatch(UUID_RE);
    expect(run).toMatchObject({
      tenant_id: a.id,
      dataset_id: dsA.datasetId,
      dataset_version_id: dsA.versionId,
      eval_version_id: evA.evalVersionId,
      status: 'pending',
      item_count: 7,
      completed_count: 0,
      passed_count: 0,
      failed_count: 0,
      error_count: 0,
      mean_score: null,
      usage: { prompt_tokens: 0, completion_tokens: 0 },
      cost_usd: null,
      started_at: null,
      completed_at: null,
      error_message: null,
    });
    expect(run.created_at).toMatch(ISO_RE);

    const job = await stack.container.queues.runStart.getJob(jobIds.runStart(run.id as string));
    expect(job?.id).toBe(run.id);
    expect(job?.data).toEqual({ run_id: run.id });

    const got = await rest('GET', `/v1/eval-runs/${run.id as string}`, { key: a.keys.viewer });
    expect(got.status).toBe(200);
    expect(got.body).toEqual(run);
  });

  it('owners may schedule too; viewers get 403', async () => {
    const owner = await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.owner, body: { eval_version_id: evA.evalVersionId } });
    expect(owner.status).toBe(202);
    const viewer = await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.viewer, body: { eval_version_id: evA.evalVersionId } });
    expect(viewer.status).toBe(403);
    expectErrorBody(viewer.body, /viewer/);
  });

  it('pins the latest version: a run over a brand-new dataset has 0 items', async () => {
    const empty = await makeDataset(stack.container, a.id, []);
    const res = await rest('POST', `/v1/datasets/${empty.datasetId}/runs`, { key: a.keys.member, body: { eval_version_id: evA.evalVersionId } });
    expect(res.status).toBe(202);
    expect(res.body.item_count).toBe(0);
  });
});

describe('errors are { "error": … } with the right status', () => {
  const schedule = (datasetId: string, body: unknown, key = a.keys.member) => rest('POST', `/v1/datasets/${datasetId}/runs`, { key, body });

  it('404 for an unknown dataset or eval version, naming which', async () => {
    const r1 = await schedule('0190a0b0-0000-7000-8000-000000000001', { eval_version_id: evA.evalVersionId });
    expect(r1.status).toBe(404);
    expectErrorBody(r1.body, /dataset .* not found/);
    const r2 = await schedule(dsA.datasetId, { eval_version_id: '0190a0b0-0000-7000-8000-000000000002' });
    expect(r2.status).toBe(404);
    expectErrorBody(r2.body, /eval version .* not found/);
  });

  it('404 for another tenant\'s dataset, eval version and run (same as missing)', async () => {
    const r1 = await schedule(dsB.datasetId, { eval_version_id: evA.evalVersionId });
    expect(r1.status).toBe(404);
    expectErrorBody(r1.body, /dataset/);
    const r2 = await schedule(dsA.datasetId, { eval_version_id: evB.evalVersionId });
    expect(r2.status).toBe(404);
    expectErrorBody(r2.body, /eval version/);
    const runB = await schedule(dsB.datasetId, { eval_version_id: evB.evalVersionId }, b.keys.member);
    expect(runB.status).toBe(202);
    const r3 = await rest('GET', `/v1/eval-runs/${runB.body.id as string}`, { key: a.keys.owner });
    expect(r3.status).toBe(404);
    expectErrorBody(r3.body, /eval run .* not found/);
    expect(JSON.stringify(r3.body)).not.toContain(dsB.datasetId);
  });

  it('400 for a malformed id, a missing or ill-typed field, and a body that is not JSON', async () => {
    const cases = [
      await schedule('not-a-uuid', { eval_version_id: evA.evalVersionId }),
      await schedule(dsA.datasetId, {}),
      await schedule(dsA.datasetId, { eval_version_id: 42 }),
      await schedule(dsA.datasetId, { eval_version_id: 'nope' }),
      await schedule(dsA.datasetId, null),
      await schedule(dsA.datasetId, [1, 2]),
      await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.member, rawBody: '{"eval_version_id":' }),
      await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.member, rawBody: '' }),
      await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.member, rawBody: 'hello', contentType: 'text/plain' }),
      await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.member, rawBody: '<x/>', contentType: 'application/xml' }),
      await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: a.keys.member }),
      await rest('GET', '/v1/eval-runs/123', { key: a.keys.member }),
    ];
    for (const c of cases) {
      expect(c.status, JSON.stringify(c.body)).toBe(400);
      expectErrorBody(c.body);
    }
    expect(cases[0]?.body.error).toMatch(/id: must be a UUID/);
    expect(cases[1]?.body.error).toMatch(/eval_version_id/);
    expect(cases[6]?.body.error).toMatch(/not valid JSON/);
  });

  it('401 for missing, malformed, unknown and revoked credentials', async () => {
    const path = `/v1/datasets/${dsA.datasetId}/runs`;
    const body = { eval_version_id: evA.evalVersionId };
    const missing = await rest('POST', path, { body });
    expect(missing.status).toBe(401);
    expectErrorBody(missing.body, /Authorization/);
    const basic = await rest('POST', path, { body, headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(basic.status).toBe(401);
    const unknown = await rest('POST', path, { body, key: `tl_${'A'.repeat(43)}` });
    expect(unknown.status).toBe(401);
    expectErrorBody(unknown.body, /unknown or revoked/);
    const malformed = await rest('POST', path, { body, key: 'tl_short' });
    expect(malformed.status).toBe(401);

    const victim = await makeTenant(stack.container, 'revokee');
    const ds = await makeDataset(stack.container, victim.id, items(1));
    const ev = await makeEval(stack.container, victim.id);
    const ok = await rest('POST', `/v1/datasets/${ds.datasetId}/runs`, { key: victim.keys.member, body: { eval_version_id: ev.evalVersionId } });
    expect(ok.status).toBe(202);
    await revokeApiKey(stack.container.orm.em.fork(), victim.keyIds.member);
    // The in-process cache (TTL 1 s here) may serve the key a little longer: the wait's deadline bounds it.
    await waitFor(
      async () => (await rest('GET', `/v1/eval-runs/${ok.body.id as string}`, { key: victim.keys.member })).status === 401,
      { timeoutMs: 5_000, what: 'revoked key to be refused' },
    );
    const after = await rest('GET', `/v1/eval-runs/${ok.body.id as string}`, { key: victim.keys.member });
    expectErrorBody(after.body, /unknown or revoked/);
  });

  it('unknown routes answer 404 { error }', async () => {
    const r = await rest('GET', '/v1/nope', { key: a.keys.member });
    expect(r.status).toBe(404);
    expectErrorBody(r.body);
    const r2 = await rest('GET', '/nothing-here');
    expect(r2.status).toBe(404);
    expectErrorBody(r2.body);
  });
});

describe('scheduleEvalRun over tRPC', () => {
  it('schedules and reads with the typed client', async () => {
    const client = trpc(a.keys.member);
    const run = await client.scheduleEvalRun.mutate({ id: dsA.datasetId, eval_version_id: evA.evalVersionId });
    expect(run.status).toBe('pending');
    expect(run.item_count).toBe(7);
    expect(run.tenant_id).toBe(a.id);
    const job = await stack.container.queues.runStart.getJob(run.id);
    expect(job?.data).toEqual({ run_id: run.id });
    const got = await client.getEvalRun.query({ id: run.id });
    expect(got).toEqual(run);
  });

  it('maps errors to tRPC codes with readable messages and no stack', async () => {
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => trpc().scheduleEvalRun.mutate({ id: dsA.datasetId, eval_version_id: evA.evalVersionId }), 'UNAUTHORIZED', /Authorization/],
      [() => trpc(a.keys.viewer).scheduleEvalRun.mutate({ id: dsA.datasetId, eval_version_id: evA.evalVersionId }), 'FORBIDDEN', /viewer/],
      [() => trpc(a.keys.member).scheduleEvalRun.mutate({ id: dsB.datasetId, eval_version_id: evA.evalVersionId }), 'NOT_FOUND', /dataset/],
      [() => trpc(a.keys.member).scheduleEvalRun.mutate({ id: 'x', eval_version_id: evA.evalVersionId }), 'BAD_REQUEST', /id: must be a UUID/],
    ];
    for (const [p, code, message] of cases) {
      const err = await p().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TRPCClientError);
      const e = err as TRPCClientError<AppRouter>;
      expect(e.data?.code).toBe(code);
      expect(e.message).toMatch(message);
      expect(JSON.stringify(e.shape)).not.toMatch(/stack/);
    }
  });

  it('POST /trpc/scheduleEvalRun works without the client (plain JSON, no transformer)', async () => {
    const res = await fetch(`${stack.baseUrl}/trpc/scheduleEvalRun`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${a.keys.member}` },
      body: JSON.stringify({ id: dsA.datasetId, eval_version_id: evA.evalVersionId }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { result: { data: { status: string; created_at: string } } };
    expect(body.result.data.status).toBe('pending');
    expect(body.result.data.created_at).toMatch(ISO_RE);
  });
});

describe('session JWTs (JWKS served by a local server)', () => {
  const sign = (claims: Record<string, unknown>, opts: { key?: jose.CryptoKey | Uint8Array; exp?: string; iss?: string } = {}) =>
    new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
      .setIssuer(opts.iss ?? 'https://issuer.test')
      .setSubject('user_1')
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? jwtKey);

  it('maps org and role claims to tenant and role', async () => {
    const member = await sign({ org_id: 'org_a', org_role: 'org:member' });
    const ok = await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: member, body: { eval_version_id: evA.evalVersionId } });
    expect(ok.status).toBe(202);
    expect(ok.body.tenant_id).toBe(a.id);
    const admin = await sign({ org_id: 'org_a', org_role: 'org:admin' });
    expect((await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: admin, body: { eval_version_id: evA.evalVersionId } })).status).toBe(202);
    const viewer = await sign({ org_id: 'org_a', org_role: 'org:viewer' });
    expect((await rest('POST', `/v1/datasets/${dsA.datasetId}/runs`, { key: viewer, body: { eval_version_id: evA.evalVersionId } })).status).toBe(403);
    expect((await rest('GET', `/v1/eval-runs/${ok.body.id as string}`, { key: viewer })).status).toBe(200);
    // org_b's member cannot see org_a's run
    const other = await sign({ org_id: 'org_b', org_role: 'org:member' });
    expect((await rest('GET', `/v1/eval-runs/${ok.body.id as string}`, { key: other })).status).toBe(404);
  });

  it('refuses bad signatures, expired tokens, wrong issuers, unknown orgs and missing claims with 401', async () => {
    const tokens = [
      await sign({ org_id: 'org_a', org_role: 'org:member' }, { key: otherJwtKey }),
      await sign({ org_id: 'org_a', org_role: 'org:member' }, { exp: '-1m' }),
      await sign({ org_id: 'org_a', org_role: 'org:member' }, { iss: 'https://evil.test' }),
      await sign({ org_id: 'org_unknown', org_role: 'org:member' }),
      await sign({ org_role: 'org:member' }),
      await sign({ org_id: 'org_a', org_role: 'org:janitor' }),
      'not.a.jwt',
    ];
    for (const t of tokens) {
      const r = await rest('GET', `/v1/eval-runs/0190a0b0-0000-7000-8000-000000000003`, { key: t });
      expect(r.status, JSON.stringify(r.body)).toBe(401);
      expectErrorBody(r.body);
    }
  });
});

describe('health', () => {
  it('GET /healthz answers 200 and /readyz reports its checks', async () => {
    const h = await rest('GET', '/healthz');
    expect(h.status).toBe(200);
    const r = await rest('GET', '/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ status: 'ok', checks: { postgres: 'ok', redis: 'ok', migrations: 'ok' } });
  });
});
