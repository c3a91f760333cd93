/**
 * datasets domain operations. A new version never copies unchanged items: it
 * adds rows valid from the new version, and closes (valid_to) removed ones.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { DomainError, notFound } from '../shared/errors.ts';
import { cutRows, jsonBytesSql, ROW_OVERHEAD_BYTES } from '../shared/pagination.ts';
import { sql } from '../shared/sql.ts';

/** Bytes of an item's JSON values (what a list answers for it), from the row alias `a`. */
export const itemBytesSql = (a: string) => jsonBytesSql(`${a}.input`, `${a}.expected_output`, `${a}.output`, `${a}.metadata`);

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
    `insert into dataset_items (id, tenant_id, dataset_id, valid_from, valid_to, input, expected_output, output, metadata, size_bytes, created_at)
     select x.id, ?, ?, ?, null, coalesce(x.input, 'null'::jsonb), x.expected_output, x.output, x.metadata, ${itemBytesSql('x')}, now()
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

export async function findDataset(em: EntityManager, tenantId: string, datasetId: string): Promise<DatasetRow> {
  const [row] = await sql<DatasetRow>(em, 'select * from datasets where id = ? and tenant_id = ?', [datasetId, tenantId]);
  if (!row) throw notFound('dataset', datasetId);
  return row;
}

export async function listDatasets(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<DatasetRow[]> {
  return sql<DatasetRow>(
    em,
    `select * from datasets where tenant_id = ? ${after ? 'and id < ?' : ''} order by id desc limit ?`,
    after ? [tenantId, after, limit + 1] : [tenantId, limit + 1],
  );
}

/** A new version without `itemIds`; every id must be an item of the latest version. */
export async function deleteDatasetItems(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  itemIds: readonly string[],
): Promise<DatasetVersionRow> {
  const unique = [...new Set(itemIds)];
  return em.transactional(async (tx) => {
    const { version, previousCount } = await openNextVersion(tx, tenantId, datasetId);
    const closed = await sql<{ id: string }>(
      tx,
      `update dataset_items set valid_to = ?
        where dataset_id = ? and tenant_id = ? and valid_to is null
          and id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
        returning id`,
      [version, datasetId, tenantId, JSON.stringify(unique)],
    );
    if (closed.length !== unique.length) {
      const found = new Set(closed.map((r) => r.id));
      const missing = unique.filter((id) => !found.has(id));
      throw new DomainError(
        'NOT_FOUND',
        `${missing.length} item(s) are not in the latest version of dataset ${datasetId}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
      );
    }
    return insertVersionRow(tx, tenantId, datasetId, version, previousCount - closed.length);
  });
}

export async function listDatasetVersions(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  before: number | undefined,
  limit: number,
): Promise<DatasetVersionRow[]> {
  await findDataset(em, tenantId, datasetId);
  return sql<DatasetVersionRow>(
    em,
    `select id, dataset_id, version, item_count, created_at from dataset_versions
      where dataset_id = ? and tenant_id = ? ${before !== undefined ? 'and version < ?' : ''}
      order by version desc limit ?`,
    before !== undefined ? [datasetId, tenantId, before, limit + 1] : [datasetId, tenantId, limit + 1],
  );
}

export interface DatasetItemRow {
  id: string;
  input: unknown;
  expected_output: unknown;
  output: unknown;
  metadata: Record<string, unknown> | null;
  created_at: Date | string;
}

/**
 * A version's items in id order, a keyset page at a time, cut short when the
 * page would exceed `maxBytes` (a single larger row still comes alone). Sizes
 * come from size_bytes, so only the rows of the page are read whole.
 */
export async function listDatasetItems(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  version: number | undefined,
  after: string | undefined,
  limit: number,
  maxBytes: number,
): Promise<{ rows: DatasetItemRow[]; truncated: boolean }> {
  const ds = await findDataset(em, tenantId, datasetId);
  const v = version ?? ds.latest_version;
  if (v > ds.latest_version) throw notFound(`version ${v} of dataset`, datasetId);
  const rows = await sql<DatasetItemRow & { page_rows: number }>(
    em,
    `with page as (
       select d.id, coalesce(d.size_bytes, ${itemBytesSql('d')}) + ${ROW_OVERHEAD_BYTES} as bytes
         from dataset_items d
        where d.dataset_id = ? and d.valid_from <= ? and (d.valid_to is null or d.valid_to > ?) ${after ? 'and d.id > ?' : ''}
        order by d.id limit ?
     ), cut as (
       select id, row_number() over (order by id) as n, sum(bytes) over (order by id) as running, count(*) over () as page_rows from page
     )
     select i.id, i.input, i.expected_output, i.output, i.metadata, i.created_at, c.page_rows::int as page_rows
       from cut c join dataset_items i on i.id = c.id
      where c.n = 1 or c.running <= ?
      order by i.id`,
    after ? [datasetId, v, v, after, limit + 1, maxBytes] : [datasetId, v, v, limit + 1, maxBytes],
  );
  return cutRows(rows);
}

/** Deletes a dataset with its versions, items, runs and results; refused while one of its runs is unfinished. */
export async function deleteDataset(em: EntityManager, tenantId: string, datasetId: string): Promise<void> {
  await em.transactional(async (tx) => {
    const [ds] = await sql<{ id: string }>(tx, 'select id from datasets where id = ? and tenant_id = ? for update', [datasetId, tenantId]);
    if (!ds) throw notFound('dataset', datasetId);
    // Lock the dataset's runs before looking at them: a run retried meanwhile cannot turn running
    // behind this check, and a chunk still recording results (it holds its run FOR KEY SHARE for
    // the statement) commits first, so the deletes below see its results.
    const runs = await sql<{ id: string; status: string }>(tx, 'select id, status from eval_runs where dataset_id = ? for update', [datasetId]);
    const active = runs.find((r) => r.status === 'pending' || r.status === 'running');
    if (active) {
      throw new DomainError('CONFLICT', `dataset ${datasetId} has a ${active.status} run (${active.id}); cancel it or wait for it to finish`);
    }
    // Results have no foreign key to their run (it cost a check per recorded result): delete them,
    // and the chunks, explicitly; the cascade from the dataset then takes versions, items and runs.
    if (runs.length > 0) {
      await sql(tx, 'delete from eval_run_items where run_id in (select id from eval_runs where dataset_id = ?)', [datasetId]);
      await sql(tx, 'delete from eval_run_chunks where run_id in (select id from eval_runs where dataset_id = ?)', [datasetId]);
    }
    await sql(tx, 'delete from datasets where id = ?', [datasetId]);
  });
}
