/** Tenants and their API keys (managed from the CLI). */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import type { Role } from '../../entities/index.ts';
import { generateApiKey, hashApiKey } from '../../server/auth.ts';
import { notFound } from '../../server/errors.ts';
import { sql } from '../../server/sql.ts';

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
