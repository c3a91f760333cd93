/**
 * datasets domain operations. A new version never copies unchanged items: it
 * adds rows valid from the new version, and closes (valid_to) removed ones.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { notFound } from '../../server/errors.ts';
import { sql } from '../../server/sql.ts';

export interface NewItem {
  input: unknown;
  expected_output?: unknown;
  output?: unknown;
  metadata?: unknown;
}

export interface DatasetRow {
  id: string;
  tenant_id: string;
  name: string;
  description: string | null;
  latest_version: number;
  created_at: Date;
  updated_at: Date;
}

export interface DatasetVersionRow {
  id: string;
  dataset_id: string;
  version: number;
  item_count: number;
  created_at: Date;
}

/** Creates a dataset and its version 1, which holds no items. */
export async function createDataset(
  em: EntityManager,
  tenantId: string,
  input: { name: string; description?: string | null },
): Promise<{ dataset: DatasetRow; version: DatasetVersionRow }> {
  return em.transactional(async (tx) => {
    const id = uuidv7();
    const [dataset] = await sql<DatasetRow>(
      tx,
      `insert into datasets (id, tenant_id, name, description, latest_version, created_at, updated_at)
       values (?, ?, ?, ?, 1, now(), now()) returning *`,
      [id, tenantId, input.name, input.description ?? null],
    );
    const [version] = await sql<DatasetVersionRow>(
      tx,
      `insert into dataset_versions (id, tenant_id, dataset_id, version, item_count, created_at)
       values (?, ?, ?, 1, 0, now()) returning id, dataset_id, version, item_count, created_at`,
      [uuidv7(), tenantId, id],
    );
    return { dataset: dataset as DatasetRow, version: version as DatasetVersionRow };
  });
}

/**
 * Opens the next version of a dataset inside `tx`: bumps latest_version (the
 * row lock serialises concurrent writers) and returns the new number and the
 * previous version's item count.
 */
export async function openNextVersion(
  tx: EntityManager,
  tenantId: string,
  datasetId: string,
): Promise<{ version: number; previousCount: number }> {
  const rows = await sql<{ version: number; previous_count: number }>(
    tx,
    `with bumped as (
       update datasets set latest_version = latest_version + 1, updated_at = now()
        where id = ? and tenant_id = ?
        returning id, latest_version
     )
     select b.latest_version as version, v.item_count as previous_count
       from bumped b join dataset_versions v on v.dataset_id = b.id and v.version = b.latest_version - 1`,
    [datasetId, tenantId],
  );
  const row = rows[0];
  if (!row) throw notFound('dataset', datasetId);
  return { version: row.version, previousCount: row.previous_count };
}

export async function insertVersionRow(
  tx: EntityManager,
  tenantId: string,
  datasetId: string,
  version: number,
  itemCount: number,
): Promise<DatasetVersionRow> {
  const [row] = await sql<DatasetVersionRow>(
    tx,
    `insert into dataset_versions (id, tenant_id, dataset_id, version, item_count, created_at)
     values (?, ?, ?, ?, ?, now()) returning id, dataset_id, version, item_count, created_at`,
    [uuidv7(), tenantId, datasetId, version, itemCount],
  );
  return row as DatasetVersionRow;
}

/** Inserts items valid from `version`, in one statement (the JSON array is unpacked by Postgres). */
export async function insertItems(
  tx: EntityManager,
  tenantId: string,
  datasetId: string,
  version: number,
  items: readonly NewItem[],
): Promise<string[]> {
  if (items.length === 0) return [];
  const ids = items.map(() => uuidv7());
  const payload = JSON.stringify(
    items.map((it, i) => ({
      id: ids[i],
      input: it.input ?? null,
      expected_output: it.expected_output ?? null,
      output: it.output ?? null,
      metadata: it.metadata ?? null,
    })),
  );
  await sql(
    tx,
    `insert into dataset_items (id, tenant_id, dataset_id, valid_from, valid_to, input, expected_output, output, metadata, created_at)
     select x.id, ?, ?, ?, null, coalesce(x.input, 'null'::jsonb), x.expected_output, x.output, x.metadata, now()
       from jsonb_to_recordset(?::jsonb) as x(id uuid, input jsonb, expected_output jsonb, output jsonb, metadata jsonb)`,
    [tenantId, datasetId, version, payload],
  );
  return ids;
}

/** A new version holding the previous items plus `items`. */
export async function addDatasetItems(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  items: readonly NewItem[],
): Promise<DatasetVersionRow> {
  return em.transactional(async (tx) => {
    const { version, previousCount } = await openNextVersion(tx, tenantId, datasetId);
    await insertItems(tx, tenantId, datasetId, version, items);
    return insertVersionRow(tx, tenantId, datasetId, version, previousCount + items.length);
  });
}
