/** Tenants and their API keys (managed from the CLI). */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import type { Role } from '../../entities/index.ts';
import { generateApiKey, hashApiKey } from './api-keys.ts';
import { notFound } from '../shared/errors.ts';
import { sql } from '../shared/sql.ts';

export async function createTenant(
  em: EntityManager,
  input: { name: string; externalOrgId?: string | null },
): Promise<{ id: string; name: string; external_org_id: string | null }> {
  const [row] = await sql<{ id: string; name: string; external_org_id: string | null }>(
    em,
    `insert into tenants (id, name, external_org_id, created_at) values (?, ?, ?, now()) returning id, name, external_org_id`,
    [uuidv7(), input.name, input.externalOrgId ?? null],
  );
  return row as { id: string; name: string; external_org_id: string | null };
}

/** Creates an API key; the returned `key` is the only time the secret exists outside the caller. */
export async function createApiKey(
  em: EntityManager,
  input: { tenantId: string; role: Role; name?: string | null },
): Promise<{ id: string; key: string; role: Role; tenant_id: string }> {
  const exists = await sql(em, 'select 1 from tenants where id = ?', [input.tenantId]);
  if (exists.length === 0) throw notFound('tenant', input.tenantId);
  const key = generateApiKey();
  const id = uuidv7();
  await sql(
    em,
    `insert into api_keys (id, tenant_id, name, role, key_hash, key_prefix, created_at) values (?, ?, ?, ?, ?, ?, now())`,
    [id, input.tenantId, input.name ?? null, input.role, hashApiKey(key), key.slice(0, 7)],
  );
  return { id, key, role: input.role, tenant_id: input.tenantId };
}

export async function revokeApiKey(em: EntityManager, id: string): Promise<{ id: string; revoked_at: string }> {
  const [row] = await sql<{ id: string; revoked_at: Date }>(
    em,
    `update api_keys set revoked_at = coalesce(revoked_at, now()) where id = ? returning id, revoked_at`,
    [id],
  );
  if (!row) throw notFound('api key', id);
  return { id: row.id, revoked_at: new Date(row.revoked_at).toISOString() };
}

/** Most rows a list command prints: an operator's terminal, not an export. */
export const LIST_LIMIT = 1000;

const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());

export async function listTenants(
  em: EntityManager,
): Promise<{ tenants: { id: string; name: string; external_org_id: string | null; created_at: string }[]; truncated: boolean }> {
  const rows = await sql<{ id: string; name: string; external_org_id: string | null; created_at: Date }>(
    em,
    `select id, name, external_org_id, created_at from tenants order by created_at, id limit ?`,
    [LIST_LIMIT + 1],
  );
  return {
    tenants: rows.slice(0, LIST_LIMIT).map((r) => ({ id: r.id, name: r.name, external_org_id: r.external_org_id, created_at: iso(r.created_at) as string })),
    truncated: rows.length > LIST_LIMIT,
  };
}

interface ApiKeyListing {
  id: string;
  tenant_id: string;
  name: string | null;
  role: Role;
  key_prefix: string;
  created_at: string;
  revoked_at: string | null;
}

/** API keys without their secret: only the hash is stored, and it is not printed either. */
export async function listApiKeys(em: EntityManager, input: { tenantId?: string }): Promise<{ keys: ApiKeyListing[]; truncated: boolean }> {
  const rows = await sql<Omit<ApiKeyListing, 'created_at' | 'revoked_at'> & { created_at: Date; revoked_at: Date | null }>(
    em,
    `select id, tenant_id, name, role, key_prefix, created_at, revoked_at from api_keys
      where (?::uuid is null or tenant_id = ?::uuid) order by created_at, id limit ?`,
    [input.tenantId ?? null, input.tenantId ?? null, LIST_LIMIT + 1],
  );
  return {
    keys: rows.slice(0, LIST_LIMIT).map((r) => ({ ...r, created_at: iso(r.created_at) as string, revoked_at: iso(r.revoked_at) })),
    truncated: rows.length > LIST_LIMIT,
  };
}
