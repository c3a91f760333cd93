/** Tenants and their API keys (managed from the CLI; keys verified on every request). */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import type { Role } from '../../entities/index.ts';
import { generateApiKey, hashApiKey } from './api-keys.ts';
import { notFound } from '../shared/errors.ts';
import * as repo from './tenant.repository.ts';

export async function createTenant(
  em: EntityManager,
  input: { name: string; externalOrgId?: string | null },
): Promise<{ id: string; name: string; external_org_id: string | null }> {
  return repo.insertTenant(em, uuidv7(), input.name, input.externalOrgId ?? null);
}

/** Creates an API key; the returned `key` is the only time the secret exists outside the caller. */
export async function createApiKey(
  em: EntityManager,
  input: { tenantId: string; role: Role; name?: string | null },
): Promise<{ id: string; key: string; role: Role; tenant_id: string }> {
  if (!(await repo.tenantExists(em, input.tenantId))) throw notFound('tenant', input.tenantId);
  const key = generateApiKey();
  const id = uuidv7();
  await repo.insertApiKey(em, { id, tenant_id: input.tenantId, name: input.name ?? null, role: input.role, key_hash: hashApiKey(key), key_prefix: key.slice(0, 7) });
  return { id, key, role: input.role, tenant_id: input.tenantId };
}

export async function revokeApiKey(em: EntityManager, id: string): Promise<{ id: string; revoked_at: string }> {
  const row = await repo.revokeApiKey(em, id);
  if (!row) throw notFound('api key', id);
  return { id: row.id, revoked_at: new Date(row.revoked_at).toISOString() };
}

/**
 * The key with this SHA-256 (hashApiKey), unless unknown or revoked. The
 * caller hashes, so it can cache by the hash and never keep the key itself.
 */
export async function verifyApiKeyHash(em: EntityManager, keyHash: string): Promise<{ id: string; tenant_id: string; role: Role } | null> {
  const row = await repo.findApiKeyByHash(em, keyHash);
  return row && !row.revoked_at ? { id: row.id, tenant_id: row.tenant_id, role: row.role } : null;
}

/** The tenant registered for a session token's organization, if any. */
export async function tenantOfOrganization(em: EntityManager, externalOrgId: string): Promise<string | null> {
  return (await repo.findTenantIdByExternalOrg(em, externalOrgId)) ?? null;
}

/** Most rows a list command prints: an operator's terminal, not an export. */
export const LIST_LIMIT = 1000;

const iso = (d: Date | null) => (d === null ? null : new Date(d).toISOString());

export async function listTenants(
  em: EntityManager,
): Promise<{ tenants: { id: string; name: string; external_org_id: string | null; created_at: string }[]; truncated: boolean }> {
  const rows = await repo.listTenants(em, LIST_LIMIT + 1);
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
  const rows = await repo.listApiKeys(em, input.tenantId ?? null, LIST_LIMIT + 1);
  return {
    keys: rows.slice(0, LIST_LIMIT).map((r) => ({ ...r, created_at: iso(r.created_at) as string, revoked_at: iso(r.revoked_at) })),
    truncated: rows.length > LIST_LIMIT,
  };
}
