/**
 * Session JWTs, verified against a JWKS served by a local HTTP server:
 * tokens that never expire, claim a future issue time, or live longer than
 * JWT_MAX_LIFETIME_SECONDS are refused with 401 naming the reason, on REST and
 * tRPC; and a JWT caller's write limit is its own within its tenant: one
 * subject in two organizations has two buckets.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../../routers/_app.ts';
import { makeTenant, type TenantFixture } from '../helpers/factories.ts';
import { startStack, type Stack } from '../helpers/stack.ts';

const MAX_LIFETIME = 3_600;
const SKEW = 30;
const KEY_WRITES = 3;

let jwks: Server;
let signingKey: jose.CryptoKey;
let s: Stack;
let a: TenantFixture;
let b: TenantFixture;

beforeAll(async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256');
  signingKey = privateKey;
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  s = await startStack({
    env: {
      JWT_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
      JWT_MAX_LIFETIME_SECONDS: String(MAX_LIFETIME),
      JWT_CLOCK_TOLERANCE_SECONDS: String(SKEW),
      RATE_LIMIT_KEY_WRITES_PER_MINUTE: String(KEY_WRITES),
      RATE_LIMIT_TENANT_WRITES_PER_MINUTE: '1000',
    },
  });
  a = await makeTenant(s.container, 'org a', 'org_a');
  b = await makeTenant(s.container, 'org b', 'org_b');
});

afterAll(async () => {
  await s?.close();
  await new Promise((r) => jwks?.close(r));
});

const now = () => Math.floor(Date.now() / 1000);

/** Signs exactly the claims given: no exp or iat unless the test sets them. */
const sign = (claims: Record<string, unknown>) =>
  new jose.SignJWT({ org_id: 'org_a', org_role: 'org:member', sub: 'user_1', ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(signingKey);

async function listDatasets(token: string) {
  const res = await fetch(`${s.baseUrl}/v1/datasets`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('session token lifetimes', () => {
  it('refuses a token without exp, with iat in the future, or living too long, with 401 naming the reason', async () => {
    const t = now();
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['no exp', { iat: t }, /no expiry \(exp claim\)/],
      ['no exp, no iat', {}, /no expiry \(exp claim\)/],
      ['iat in the future', { iat: t + 10 * SKEW, exp: t + 11 * SKEW }, /issued in the future \(iat claim\)/],
      ['exp - iat too long', { iat: t, exp: t + MAX_LIFETIME + 60 }, new RegExp(`lives ${MAX_LIFETIME + 60} s \\(exp - iat\\), longer than the ${MAX_LIFETIME} s allowed`)],
      ['a year', { iat: t, exp: t + 365 * 86_400 }, /longer than the 3600 s allowed/],
      ['no iat, exp too far', { exp: t + MAX_LIFETIME + 600 }, /\(exp - now\), longer than the 3600 s allowed/],
    ];
    for (const [what, claims, reason] of cases) {
      const r = await listDatasets(await sign(claims));
      expect(r.status, what).toBe(401);
      expect(Object.keys(r.body), what).toEqual(['error']);
      expect(r.body.error, what).toMatch(reason);
    }
  });

  it('accepts a token within the limits, an iat within the clock tolerance, and one at exactly the maximum', async () => {
    const t = now();
    for (const claims of [{ iat: t, exp: t + 300 }, { iat: t + SKEW - 10, exp: t + 300 }, { iat: t, exp: t + MAX_LIFETIME }, { exp: t + 600 }]) {
      const r = await listDatasets(await sign(claims));
      expect(r.status, JSON.stringify(claims)).toBe(200);
    }
  });

  it('refuses the same tokens over tRPC with UNAUTHORIZED and the same reason', async () => {
    const t = now();
    for (const [claims, reason] of [
      [{ iat: t }, /no expiry/],
      [{ iat: t + 10 * SKEW, exp: t + 11 * SKEW }, /issued in the future/],
      [{ iat: t, exp: t + 2 * MAX_LIFETIME }, /longer than the 3600 s allowed/],
    ] as const) {
      const token = await sign(claims);
      const client = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${s.baseUrl}/trpc`, headers: () => ({ authorization: `Bearer ${token}` }) })] });
      const err = await client.listDatasets.query({}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TRPCClientError);
      expect((err as TRPCClientError<AppRouter>).data?.code).toBe('UNAUTHORIZED');
      expect((err as Error).message).toMatch(reason);
    }
  });
});

describe('write limits of JWT callers', () => {
  const createDataset = async (token: string) => {
    const res = await fetch(`${s.baseUrl}/v1/datasets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'limited' }),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
  };
  const fresh = (claims: Record<string, unknown>) => sign({ iat: now(), exp: now() + 600, ...claims });

  it('are keyed by tenant and subject: the same sub in another organization has its own bucket', async () => {
    const inA = await fresh({ org_id: 'org_a', sub: 'user_shared' });
    const inB = await fresh({ org_id: 'org_b', sub: 'user_shared' });
    for (let i = 0; i < KEY_WRITES; i++) expect((await createDataset(inA)).status, `write ${i + 1}`).toBe(201);
    const refused = await createDataset(inA);
    expect(refused.status).toBe(429);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(refused.body.error).toMatch(/too many writes for this API key or session/);
    // The same person acting in org_b is not held back by what they did in org_a …
    for (let i = 0; i < KEY_WRITES; i++) expect((await createDataset(inB)).status, `org_b write ${i + 1}`).toBe(201);
    expect((await createDataset(inB)).status).toBe(429);
    // … and another subject of org_a still writes (the tenant's budget is far from spent).
    expect((await createDataset(await fresh({ org_id: 'org_a', sub: 'user_other' }))).status).toBe(201);
    const body = (await (await fetch(`${s.baseUrl}/v1/datasets?limit=100`, { headers: { authorization: `Bearer ${a.keys.viewer}` } })).json()) as { data: unknown[] };
    expect(body.data).toHaveLength(KEY_WRITES + 1);
    const bodyB = (await (await fetch(`${s.baseUrl}/v1/datasets?limit=100`, { headers: { authorization: `Bearer ${b.keys.viewer}` } })).json()) as { data: unknown[] };
    expect(bodyB.data).toHaveLength(KEY_WRITES);
  });
});
