/**
 * The transport's bounds, over raw sockets where fetch cannot stall: slow
 * headers and stalled or trickling bodies are cut with 408 `{ "error" }`
 * and the connection closed; a request without a valid credential is
 * answered before its body is read; the bytes of bodies in flight are
 * capped (unauthenticated, per tenant, per process: 503/429 with
 * Retry-After); tRPC sends Retry-After on 429 and 503 and has REST's body
 * guards. Assertions are on statuses, bodies, closed sockets and the bytes
 * the budgets hold — never on how long anything took.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodyBudgetsOf, type BodyBudgets } from '../../server/transport-guards.ts';
import { makeDataset, makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startDisposablePostgres } from '../helpers/processes.ts';
import { head, rawRequest, type RawAnswer } from '../helpers/raw-http.ts';
import { startStack, waitFor, type Stack } from '../helpers/stack.ts';

const MiB = 1024 * 1024;
const ENV = {
  HEADERS_TIMEOUT_MS: '800',
  BODY_IDLE_TIMEOUT_MS: '800',
  REQUEST_TIMEOUT_MS: '2500',
  BODY_LIMIT_BYTES: String(MiB),
  TENANT_BODY_BUDGET_BYTES: String(2 * MiB),
  BODY_BUDGET_BYTES: String(3 * MiB),
  UNAUTH_BODY_BUDGET_BYTES: String(128 * 1024),
  RATE_LIMIT_KEY_WRITES_PER_MINUTE: '3',
  TRPC_MAX_BATCH: '10',
};

let s: Stack;
let port: number;
let budgets: BodyBudgets;
let t: TenantFixture;
// A JWKS endpoint that never answers: a session token's check waits on it (jose gives up after 3 s).
let jwks: Server;
const stalledJwks = new Set<ServerResponse>();

beforeAll(async () => {
  jwks = createServer((_req, res) => void stalledJwks.add(res));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  s = await startStack({ env: { ...ENV, JWT_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks` } });
  port = Number(new URL(s.baseUrl).port);
  budgets = bodyBudgetsOf.get(s.app as never) as BodyBudgets;
  t = await makeTenant(s.container);
});
afterAll(async () => {
  for (const r of stalledJwks) r.destroy();
  await new Promise((r) => jwks.close(r));
  await s?.close();
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const json = { 'content-type': 'application/json' };

function expectCut(a: RawAnswer, what: string) {
  expect(a.status, `${what}: ${a.body}`).toBe(408);
  // REST: { error: "…" }; tRPC: its error shape, whose `error` holds the message
  const body = JSON.parse(a.body) as { error: unknown };
  expect(typeof body.error === 'string' ? body.error : (body.error as { message?: unknown }).message, what).toEqual(expect.any(String));
  expect(a.closed, `${what}: the server closed the connection`).toBe(true);
}

/** A session token whose check must fetch the (stalled) JWKS: well-formed, with a key id. */
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const jwt = `${b64({ alg: 'RS256', kid: 'k1' })}.${b64({ sub: 'someone', org_id: 'o' })}.${Buffer.from('sig').toString('base64url')}`;

describe('time is bounded for every client', () => {
  it('a declared body that stalls is cut with 408 { error } and the connection closed (REST, tRPC, chunked)', async () => {
    const rest = rawRequest(port, { send: head('POST', '/v1/datasets', { ...bearer(t.keys.member), ...json, 'content-length': 1000 }, '{"name":"st') });
    const trpc = rawRequest(port, { send: head('POST', '/trpc/createDataset', { ...bearer(t.keys.member), ...json, 'content-length': 1000 }, '{"name":') });
    const chunked = rawRequest(port, { send: head('POST', '/v1/datasets', { ...bearer(t.keys.member), ...json, 'transfer-encoding': 'chunked' }, '4\r\n{"na\r\n') });
    expectCut(await rest, 'REST');
    expectCut(await trpc, 'tRPC');
    expectCut(await chunked, 'chunked');
  });

  it('a body that trickles (never idle) but takes longer than REQUEST_TIMEOUT_MS is cut with 408', async () => {
    const a = await rawRequest(port, {
      send: head('POST', '/v1/datasets', { ...bearer(t.keys.member), ...json, 'content-length': 100_000 }, '{"name":"'),
      // one byte per 100 ms: 100,000 of them would take hours; the idle timeout (800 ms) never fires
      trickle: { everyMs: 100, write: (sock) => sock.write('x') },
      giveUpMs: 60_000,
    });
    expectCut(a, 'trickle');
    expect(a.body).toMatch(/did not arrive within 2500 ms/);
  });

  it('slow headers are cut with 408 { error } and the connection closed', async () => {
    const partial = await rawRequest(port, { send: 'GET /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' });
    expect(partial.status, partial.body).toBe(408);
    expect(JSON.parse(partial.body)).toEqual({ error: 'request headers did not arrive in time' });
    expect(partial.closed).toBe(true);
    const trickled = await rawRequest(port, {
      send: 'GET /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n',
      trickle: { everyMs: 100, write: (sock, n) => sock.write(`X-${n}: y\r\n`) },
    });
    expect(trickled.status).toBe(408);
    expect(trickled.closed).toBe(true);
  });

  it('the NDJSON upload has only the idle timeout: a stream longer than REQUEST_TIMEOUT_MS is stored, a stalled one cut', async () => {
    const ds = await makeDataset(s.container, t.id, []);
    const path = `/v1/datasets/${ds.datasetId}/items/upload`;
    const headers = { ...bearer(t.keys.owner), 'content-type': 'application/x-ndjson', 'transfer-encoding': 'chunked', connection: 'close' };
    const LINES = 40; // 40 lines at least 100 ms apart: longer than REQUEST_TIMEOUT_MS (2.5 s) by construction
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    const long = await rawRequest(port, {
      send: head('POST', path, headers),
      trickle: {
        everyMs: 100,
        write: (sock, n) => {
          if (n < LINES) return sock.write(chunk(`${JSON.stringify({ input: `q${n}` })}\n`)) || true;
          sock.write('0\r\n\r\n');
          return false;
        },
      },
      giveUpMs: 60_000,
    });
    expect(long.status, long.body).toBe(201);
    expect(JSON.parse(long.body)).toMatchObject({ item_count: LINES });

    const stalled = await rawRequest(port, { send: head('POST', path, { ...headers, authorization: `Bearer ${t.keys.member}` }, chunk('{"input":"a"}\n{"inp')) });
    expectCut(stalled, 'stalled upload');
    const after = await fetch(`${s.baseUrl}/v1/datasets/${ds.datasetId}`, { headers: bearer(t.keys.owner) });
    expect(await after.json(), 'the cut upload stored nothing').toMatchObject({ latest_version: 2 });
  });
});

describe('bytes held for unauthenticated requests are capped', () => {
  it('a body without a valid credential is answered 401 before a byte of it is read', async () => {
    for (const auth of [{}, { authorization: "Basic Zm9vOmJhcg==" }, { authorization: `Bearer tl_${"x".repeat(43)}` }] as Record<string, string>[]) {
      // No body is sent at all: an answer proves the server did not wait for it.
      const rest = await rawRequest(port, { send: head('POST', '/v1/datasets', { ...auth, ...json, 'content-length': 500_000 }) });
      expect(rest.status, rest.body).toBe(401);
      expect(JSON.parse(rest.body)).toEqual({ error: expect.any(String) });
      expect(rest.closed).toBe(true);
      const rpc = await rawRequest(port, { send: head('POST', '/trpc/createDataset', { ...auth, ...json, 'content-length': 500_000 }) });
      expect(rpc.status).toBe(401);
      expect(JSON.parse(rpc.body)).toMatchObject({ error: { message: expect.any(String), data: { code: 'UNAUTHORIZED', httpStatus: 401 } } });
    }
    expect(budgets.unauthenticated.used).toBe(0);
  });

  it('past UNAUTH_BODY_BUDGET_BYTES of not-yet-authenticated bodies the answer is 503 with Retry-After', async () => {
    const pendingHead = head('POST', '/v1/datasets', { authorization: `Bearer ${jwt}`, ...json, 'content-length': 100_000 });
    // Two requests whose session token waits on the stalled JWKS hold 64 KiB each: the whole 128 KiB budget.
    const first = [rawRequest(port, { send: pendingHead }), rawRequest(port, { send: pendingHead })];
    await waitFor(async () => budgets.unauthenticated.used === 128 * 1024, { what: 'two pending authentications' });
    const third = await rawRequest(port, { send: pendingHead });
    expect(third.status, third.body).toBe(503);
    expect(third.headers['retry-after']).toBe('1');
    expect(JSON.parse(third.body)).toEqual({ error: expect.any(String) });
    const rpc = await rawRequest(port, { send: head('POST', '/trpc/createDataset', { authorization: `Bearer ${jwt}`, ...json, 'content-length': 100_000 }) });
    expect(rpc.status).toBe(503);
    expect(rpc.headers['retry-after']).toBe('1');
    // The JWKS never answers: those two end as 401 and give their bytes back.
    for (const a of await Promise.all(first)) expect(a.status).toBe(401);
    expect(budgets.unauthenticated.used).toBe(0);
  });

  it('bodies in flight are capped per tenant (429) and per process (503), with Retry-After, and freed when cut', async () => {
    const [a, b, c] = [t, await makeTenant(s.container, 'b'), await makeTenant(s.container, 'c')];
    const ds = { a: await makeDataset(s.container, a.id, []), b: await makeDataset(s.container, b.id, []) };
    // NDJSON uploads of 1 MiB declared, kept alive by a trickle: each holds BODY_LIMIT_BYTES (1 MiB) until it ends.
    const holding = (tenant: TenantFixture, key: string, datasetId: string) => {
      let stop = false;
      const answer = rawRequest(port, {
        send: head('POST', `/v1/datasets/${datasetId}/items/upload`, { ...bearer(key), 'content-type': 'application/x-ndjson', 'content-length': MiB }),
        trickle: { everyMs: 100, write: (sock) => (stop ? (sock.destroy(), false) : sock.write(' ')) },
        giveUpMs: 120_000,
      });
      return { answer, release: () => void (stop = true), tenant };
    };
    const held = [holding(a, a.keys.owner, ds.a.datasetId), holding(a, a.keys.member, ds.a.datasetId)];
    await waitFor(async () => budgets.tenantHeld(a.id) === 2 * MiB, { what: "tenant a's two bodies held" });
    const overTenant = await rawRequest(port, { send: head('POST', '/v1/datasets', { ...bearer(a.keys.viewer), ...json, 'content-length': 100 }) });
    expect(overTenant.status, overTenant.body).toBe(429);
    expect(overTenant.headers['retry-after']).toBe('1');
    expect(JSON.parse(overTenant.body)).toEqual({ error: expect.any(String) });

    held.push(holding(b, b.keys.owner, ds.b.datasetId));
    await waitFor(async () => budgets.all.used === 3 * MiB, { what: 'the process budget held' });
    const overProcess = await rawRequest(port, { send: head('POST', '/trpc/createDataset', { ...bearer(c.keys.member), ...json, 'content-length': 100 }) });
    expect(overProcess.status, overProcess.body).toBe(503);
    expect(overProcess.headers['retry-after']).toBe('1');
    expect(JSON.parse(overProcess.body)).toMatchObject({ error: { data: { code: 'SERVICE_UNAVAILABLE', httpStatus: 503 } } });

    for (const h of held) h.release();
    await Promise.all(held.map((h) => h.answer));
    await waitFor(async () => budgets.all.used === 0, { what: 'every body given back' });
    const ok = await fetch(`${s.baseUrl}/v1/datasets`, { method: 'POST', headers: { ...bearer(c.keys.member), ...json }, body: '{"name":"after"}' });
    expect(ok.status).toBe(201);
  });
});

describe('tRPC has the same guards as REST', () => {
  const rpc = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${s.baseUrl}/trpc/${path}`, { ...init, headers: { ...bearer(t.keys.viewer), ...json, ...(init.headers as Record<string, string>) } });
    return { status: res.status, headers: res.headers, body: (await res.json()) as unknown };
  };
  const trpcError = (code: string, httpStatus: number) => ({ error: { message: expect.any(String), code: expect.any(Number), data: { code, httpStatus } } });
  const deep = (n: number) => `${'['.repeat(n)}1${']'.repeat(n)}`;

  it('refuses deep nesting, __proto__ and constructor.prototype keys in bodies and in ?input=, and non-JSON bodies', async () => {
    const post = (name: string, body: string) => rpc(name, { method: 'POST', headers: bearer(t.keys.member), body });
    const get = (name: string, input: string) => rpc(`${name}?input=${encodeURIComponent(input)}`);
    for (const r of [
      await post('createDataset', `{"name":"x","description":${deep(200)}}`),
      await post('createDataset', '{"name":"x","__proto__":{"polluted":true}}'),
      await post('createDataset', '{"name":"x","\\u005f_proto__":{"polluted":true}}'),
      await post('createDataset', '{"name":"x","constructor":{"prototype":{"polluted":true}}}'),
      await get('listDatasets', `{"limit":${deep(200)}}`),
      await get('listDatasets', '{"__proto__":{"limit":1}}'),
    ]) {
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body).toMatchObject(trpcError('BAD_REQUEST', 400));
    }
    const multipart = await fetch(`${s.baseUrl}/trpc/createDataset`, { method: 'POST', headers: { ...bearer(t.keys.member), 'content-type': 'multipart/form-data; boundary=x' }, body: `--x\r\nContent-Disposition: form-data; name="name"\r\n\r\n${'a'.repeat(1000)}\r\n--x--\r\n` });
    expect(multipart.status).toBe(400);
    const big = await post('createDataset', `{"name":"${'x'.repeat(MiB + 10)}"}`);
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject(trpcError('PAYLOAD_TOO_LARGE', 413));
    expect(({}) as Record<string, unknown>).not.toHaveProperty('polluted');
  });

  it('caps the calls in one batch (TRPC_MAX_BATCH), for queries and mutations, answering one error per call', async () => {
    const names = Array.from({ length: 11 }, () => 'listDatasets').join(',');
    const input = JSON.stringify(Object.fromEntries(Array.from({ length: 11 }, (_, i) => [i, {}])));
    const q = await rpc(`${names}?batch=1&input=${encodeURIComponent(input)}`);
    expect(q.status).toBe(400);
    expect(q.body).toHaveLength(11);
    expect((q.body as unknown[])[0]).toMatchObject(trpcError('BAD_REQUEST', 400));
    const m = await rpc(`${Array(11).fill('createDataset').join(',')}?batch=1`, { method: 'POST', headers: bearer(t.keys.member), body: input });
    expect(m.status).toBe(400);
    expect(JSON.stringify(m.body)).toMatch(/at most 10 calls/);
    const ok = await rpc(`${Array(10).fill('listDatasets').join(',')}?batch=1&input=${encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: 10 }, (_, i) => [i, {}]))))}`);
    expect(ok.status).toBe(200);
  });

  it('sends Retry-After on 429 (write limits), single and batch', async () => {
    const u = await makeTenant(s.container, 'limited');
    const create = (path: string, body: string) => rpc(path, { method: 'POST', headers: bearer(u.keys.member), body });
    for (let i = 0; i < 3; i++) expect((await create('createDataset', `{"name":"d${i}"}`)).status).toBe(200);
    const single = await create('createDataset', '{"name":"over"}');
    expect(single.status).toBe(429);
    expect(Number(single.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(single.body).toMatchObject(trpcError('TOO_MANY_REQUESTS', 429));
    const batch = await create('createDataset,createDataset?batch=1', '{"0":{"name":"a"},"1":{"name":"b"}}');
    expect(batch.status).toBe(429);
    expect(Number(batch.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('sends Retry-After on 503 (the database is down)', async () => {
    // A PostgreSQL of its own, stopped mid-test: the shared one must stay up for every other file.
    const pgd = await startDisposablePostgres();
    const down = await startStack({ env: { ...ENV, DATABASE_URL: pgd.databaseUrl('evalgate_503') } });
    try {
      const u = await makeTenant(down.container, 'outage');
      const get = async () => {
        const res = await fetch(`${down.baseUrl}/trpc/listDatasets?input=%7B%7D`, { headers: bearer(u.keys.viewer) });
        return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as unknown };
      };
      expect((await get()).status).toBe(200);
      await pgd.stop('immediate');
      const r = await get();
      expect(r.status, JSON.stringify(r.body)).toBe(503);
      expect(r.retryAfter).toBe('1');
      expect(r.body).toMatchObject(trpcError('SERVICE_UNAVAILABLE', 503));
      const batch = await fetch(`${down.baseUrl}/trpc/listDatasets,listDatasets?batch=1&input=${encodeURIComponent('{"0":{},"1":{}}')}`, { headers: bearer(u.keys.viewer) });
      expect(batch.status).toBe(503);
      expect(batch.headers.get('retry-after')).toBe('1');
    } finally {
      await pgd.start();
      await down.close();
      await pgd.destroy();
    }
  });
});
