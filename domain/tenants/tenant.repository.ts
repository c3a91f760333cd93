/** Every statement on tenants and api_keys. */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ApiKey, Tenant } from '../../entities/index.ts';
import type { RowOf } from '../shared/row.ts';
import { sql } from '../shared/sql.ts';

export type TenantRow = RowOf<typeof Tenant>;
/** An API key without its hash. */
export type ApiKeyListingRow = RowOf<typeof ApiKey, 'id' | 'tenant_id' | 'name' | 'role' | 'key_prefix' | 'created_at' | 'revoked_at'>;
/** What authentication needs of a key. */
export type ApiKeyAuthRow = RowOf<typeof ApiKey, 'id' | 'tenant_id' | 'role' | 'revoked_at'>;

export async function insertTenant(em: EntityManager, id: string, name: string, externalOrgId: string | null): Promise<Pick<TenantRow, 'id' | 'name' | 'external_org_id'>> {
  const [row] = await sql<Pick<TenantRow, 'id' | 'name' | 'external_org_id'>>(
    em,
    `insert into tenants (id, name, external_org_id, created_at) values (?, ?, ?, now()) returning id, name, external_org_id`,
    [id, name, externalOrgId],
  );
  return row as Pick<TenantRow, 'id' | 'name' | 'external_org_id'>;
}

export async function tenantExists(em: EntityManager, id: string): Promise<boolean> {
  const rows = await sql(em, 'select 1 from tenants where id = ?', [id]);
  return rows.length > 0;
}

/** The tenant a session JWT's organization claim maps to. */
export async function findTenantIdByExternalOrg(em: EntityManager, externalOrgId: string): Promise<string | undefined> {
  const [row] = await sql<{ id: string }>(em, 'select id from tenants where external_org_id = ?', [externalOrgId]);
  return row?.id;
}

/** In creation order; `limit` rows at most. */
export async function listTenants(em: EntityManager, limit: number): Promise<Pick<TenantRow, 'id' | 'name' | 'external_org_id' | 'created_at'>[]> {
  return sql<Pick<TenantRow, 'id' | 'name' | 'external_org_id' | 'created_at'>>(
    em,
    `select id, name, external_org_id, created_at from tenants order by created_at, id limit ?`,
    [limit],
  );
}

export async function insertApiKey(
  em: EntityManager,
  k: Pick<RowOf<typeof ApiKey>, 'id' | 'tenant_id' | 'name' | 'role' | 'key_hash' | 'key_prefix'>,
): Promise<void> {
  await sql(
    em,
    `insert into api_keys (id, tenant_id, name, role, key_hash, key_prefix, created_at) values (?, ?, ?, ?, ?, ?, now())`,
    [k.id, k.tenant_id, k.name, k.role, k.key_hash, k.key_prefix],
  );
}

/** Sets revoked_at unless it is set already; undefined when there is no such key. */
export async function revokeApiKey(em: EntityManager, id: string): Promise<{ id: string; revoked_at: Date } | undefined> {
  const [row] = await sql<{ id: string; revoked_at: Date }>(
    em,
    `update api_keys set revoked_at = coalesce(revoked_at, now()) where id = ? returning id, revoked_at`,
    [id],
  );
  return row;
}

/** Keys of one tenant (or of all when `tenantId` is null), in creation order; `limit` rows at most. */
export async function listApiKeys(em: EntityManager, tenantId: string | null, limit: number): Promise<ApiKeyListingRow[]> {
  return sql<ApiKeyListingRow>(
    em,
    `select id, tenant_id, name, role, key_prefix, created_at, revoked_at from api_keys
      where (?::uuid is null or tenant_id = ?::uuid) order by created_at, id limit ?`,
    [tenantId, tenantId, limit],
  );
}

export async function findApiKeyByHash(em: EntityManager, keyHash: string): Promise<ApiKeyAuthRow | undefined> {
  const [row] = await sql<ApiKeyAuthRow>(em, 'select id, tenant_id, role, revoked_at from api_keys where key_hash = ?', [keyHash]);
  return row;
}
