/**
 * Who is calling: `Authorization: Bearer tl_…` API keys and session JWTs.
 * A principal is a tenant plus a role; procedures check the role against an
 * allowlist (server/trpc.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import * as jose from 'jose';
import { ROLES, type Role } from '../entities/index.ts';
import { API_KEY_PATTERN, hashApiKey } from '../domain/tenants/api-keys.ts';
import { tenantOfOrganization, verifyApiKeyHash } from '../domain/tenants/tenant.service.ts';
import type { Env } from './env.ts';

export interface Principal {
  tenantId: string;
  role: Role;
  /** api key id, or `jwt:<subject>` */
  actor: string;
}

export class AuthError extends Error {
  override name = 'AuthError';
}

interface CachedKey {
  principal: Principal | null;
  expiresAt: number;
}

/**
 * Resolves API keys through a short-lived in-process cache. The TTL is the
 * longest a revoked key can keep working in a process that saw it before.
 */
export class ApiKeyResolver {
  private readonly cache = new Map<string, CachedKey>();
  private static readonly MAX_ENTRIES = 10_000;

  constructor(private readonly ttlMs: number) {}

  async resolve(em: EntityManager, key: string): Promise<Principal | null> {
    const hash = hashApiKey(key);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && hit.expiresAt > now) return hit.principal;
    const found = await verifyApiKeyHash(em, hash);
    const principal = found ? { tenantId: found.tenant_id, role: found.role, actor: found.id } : null;
    if (this.ttlMs > 0) {
      if (this.cache.size >= ApiKeyResolver.MAX_ENTRIES) this.cache.clear();
      this.cache.set(hash, { principal, expiresAt: now + this.ttlMs });
    }
    return principal;
  }
}

/** Maps a role claim to our roles: `org:admin`/`admin`/`owner` → owner, `org:member` → member, … */
export function roleFromClaim(value: unknown): Role | null {
  if (typeof value !== 'string') return null;
  const v = value.replace(/^org:/, '').toLowerCase();
  if (v === 'admin') return 'owner';
  return (ROLES as readonly string[]).includes(v) ? (v as Role) : null;
}

export class JwtVerifier {
  private constructor(
    private readonly key: jose.JWTVerifyGetKey | Awaited<ReturnType<typeof jose.importSPKI>>,
    private readonly env: Env,
  ) {}

  static async create(env: Env): Promise<JwtVerifier | null> {
    if (env.JWT_JWKS_URL) {
      return new JwtVerifier(jose.createRemoteJWKSet(new URL(env.JWT_JWKS_URL), { timeoutDuration: 3_000 }), env);
    }
    if (env.JWT_PUBLIC_KEY) {
      const pem = env.JWT_PUBLIC_KEY.replace(/\\n/g, '\n');
      if (!pem.includes('BEGIN PUBLIC KEY')) throw new Error('JWT_PUBLIC_KEY must be a PEM "PUBLIC KEY" (SPKI)');
      return new JwtVerifier(await jose.importSPKI(pem, env.JWT_ALGORITHM), env);
    }
    return null;
  }

  /** Verifies a session JWT and returns the org id and role it carries. */
  async verify(token: string): Promise<{ orgId: string; role: Role; subject: string }> {
    let payload: jose.JWTPayload;
    try {
      const opts: jose.JWTVerifyOptions = {
        issuer: this.env.JWT_ISSUER,
        audience: this.env.JWT_AUDIENCE,
        clockTolerance: this.env.JWT_CLOCK_TOLERANCE_SECONDS,
        ...(typeof this.key === 'function' ? {} : { algorithms: [this.env.JWT_ALGORITHM] }),
      };
      payload =
        typeof this.key === 'function'
          ? (await jose.jwtVerify(token, this.key, opts)).payload
          : (await jose.jwtVerify(token, this.key, opts)).payload;
    } catch (err) {
      if (err instanceof jose.errors.JWTExpired) throw new AuthError('session token expired');
      if (err instanceof jose.errors.JOSEError) throw new AuthError(`invalid session token: ${err.code}`);
      throw err;
    }
    checkLifetime(payload, this.env);
    const org = readClaim(payload, this.env.JWT_ORG_CLAIM);
    if (typeof org !== 'string' || org === '') {
      throw new AuthError(`session token has no organization (claim "${this.env.JWT_ORG_CLAIM}")`);
    }
    const role = roleFromClaim(readClaim(payload, this.env.JWT_ROLE_CLAIM));
    if (!role) throw new AuthError(`session token has no known role (claim "${this.env.JWT_ROLE_CLAIM}")`);
    return { orgId: org, role, subject: payload.sub ?? 'unknown' };
  }
}

/**
 * A stolen session token is good until it expires, so one that never expires,
 * claims to be issued in the future (a skewed or forging issuer), or lives
 * longer than JWT_MAX_LIFETIME_SECONDS is refused, whatever its signature.
 * (jose has already refused an expired one and an `iat`/`exp` that is not a number.)
 */
function checkLifetime(payload: jose.JWTPayload, env: Env, nowSeconds = Math.floor(Date.now() / 1000)): void {
  const { exp, iat } = payload;
  if (typeof exp !== 'number') throw new AuthError('session token has no expiry (exp claim); refusing a token that never expires');
  const skew = env.JWT_CLOCK_TOLERANCE_SECONDS;
  if (typeof iat === 'number' && iat > nowSeconds + skew) throw new AuthError('session token was issued in the future (iat claim); check the issuer\'s clock');
  const max = env.JWT_MAX_LIFETIME_SECONDS;
  const lifetime = exp - (typeof iat === 'number' ? iat : nowSeconds);
  if (lifetime > max) {
    throw new AuthError(`session token lives ${lifetime} s (exp${typeof iat === 'number' ? ' - iat' : ' - now'}), longer than the ${max} s allowed`);
  }
}

/** Reads a claim; a dotted name (`o.id`) walks into nested objects, as Clerk's v2 session tokens need. */
function readClaim(payload: jose.JWTPayload, name: string): unknown {
  if (name in payload) return payload[name];
  let cur: unknown = payload;
  for (const part of name.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Resolves an Authorization header into a principal, or throws AuthError with a message a user can act on. */
export async function authenticate(
  header: string | undefined,
  deps: { em: EntityManager; apiKeys: ApiKeyResolver; jwt: JwtVerifier | null },
): Promise<Principal> {
  if (!header) throw new AuthError('missing Authorization header: send "Authorization: Bearer tl_…"');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw new AuthError('Authorization header must be "Bearer <API key or session token>"');
  const token = match[1];
  if (token.startsWith('tl_')) {
    if (!API_KEY_PATTERN.test(token)) throw new AuthError('malformed API key');
    const principal = await deps.apiKeys.resolve(deps.em, token);
    if (!principal) throw new AuthError('unknown or revoked API key');
    return principal;
  }
  if (!deps.jwt) throw new AuthError('bearer token is not an API key (tl_…), and session tokens are not enabled');
  const claims = await deps.jwt.verify(token);
  const tenantId = await tenantOfOrganization(deps.em, claims.orgId);
  if (!tenantId) throw new AuthError(`organization "${claims.orgId}" is not registered with evalgate`);
  return { tenantId, role: claims.role, actor: `jwt:${claims.subject}` };
}

/** Compares fixed-length digests, so neither the length nor the content of a configured secret leaks through timing. */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
