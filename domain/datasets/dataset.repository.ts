/**
 * Every statement on datasets, dataset_versions, dataset_items and the upload
 * staging tables (dataset_uploads, dataset_upload_items). Callers own the
 * transaction: a function given `tx` must run inside one.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Dataset, DatasetItem, DatasetVersion } from '../../entities/index.ts';
import { jsonBytesSql, ROW_OVERHEAD_BYTES } from '../shared/pagination.ts';
import type { RowOf } from '../shared/row.ts';
import { sql } from '../shared/sql.ts';

export type DatasetRow = RowOf<typeof Dataset>;
export type DatasetVersionRow = RowOf<typeof DatasetVersion, 'id' | 'dataset_id' | 'version' | 'item_count' | 'created_at'>;
export type DatasetItemRow = RowOf<typeof DatasetItem, 'id' | 'input' | 'expected_output' | 'output' | 'metadata' | 'created_at'>;

/** Bytes of an item's JSON values (what a list answers for it), from the row alias `a`. */
export const itemBytesSql = (a: string) => jsonBytesSql(`${a}.input`, `${a}.expected_output`, `${a}.output`, `${a}.metadata`);

const VERSION_COLUMNS = 'id, dataset_id, version, item_count, created_at';

export async function insertDataset(tx: EntityManager, id: string, tenantId: string, name: string, description: string | null): Promise<DatasetRow> {
  const [row] = await sql<DatasetRow>(
    tx,
    `insert into datasets (id, tenant_id, name, description, latest_version, created_at, updated_at)
       values (?, ?, ?, ?, 1, now(), now()) returning *`,
    [id, tenantId, name, description],
  );
  return row as DatasetRow;
}

/** Version 1, empty. */
export async function insertFirstVersion(tx: EntityManager, id: string, tenantId: string, datasetId: string): Promise<DatasetVersionRow> {
  const [row] = await sql<DatasetVersionRow>(
    tx,
    `insert into dataset_versions (id, tenant_id, dataset_id, version, item_count, created_at)
       values (?, ?, ?, 1, 0, now()) returning ${VERSION_COLUMNS}`,
    [id, tenantId, datasetId],
  );
  return row as DatasetVersionRow;
}

/**
 * Bumps latest_version (the row lock serialises concurrent writers until `tx`
 * ends); the new number and the previous version's item count, or undefined
 * when the dataset is not the tenant's.
 */
export async function bumpLatestVersion(
  tx: EntityManager,
  tenantId: string,
  datasetId: string,
): Promise<{ version: number; previous_count: number } | undefined> {
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
  return rows[0];
}

export async function insertVersion(
  tx: EntityManager,
  id: string,
  tenantId: string,
  datasetId: string,
  version: number,
  itemCount: number,
): Promise<DatasetVersionRow> {
  const [row] = await sql<DatasetVersionRow>(
    tx,
    `insert into dataset_versions (id, tenant_id, dataset_id, version, item_count, created_at)
     values (?, ?, ?, ?, ?, now()) returning ${VERSION_COLUMNS}`,
    [id, tenantId, datasetId, version, itemCount],
  );
  return row as DatasetVersionRow;
}

/** Items valid from `version`, in one statement: `itemsJson` is a JSON array of {id, input, expected_output, output, metadata}, unpacked by Postgres. */
export async function insertItems(tx: EntityManager, tenantId: string, datasetId: string, version: number, itemsJson: string): Promise<void> {
  await sql(
    tx,
    `insert into dataset_items (id, tenant_id, dataset_id, valid_from, valid_to, input, expected_output, output, metadata, size_bytes, created_at)
     select x.id, ?, ?, ?, null, coalesce(x.input, 'null'::jsonb), x.expected_output, x.output, x.metadata, ${itemBytesSql('x')}, now()
       from jsonb_to_recordset(?::jsonb) as x(id uuid, input jsonb, expected_output jsonb, output jsonb, metadata jsonb)`,
    [tenantId, datasetId, version, itemsJson],
  );
}

/** Closes (valid_to = `version`) the latest version's items among `idsJson` (a JSON array of ids); returns those closed. */
export async function closeItems(tx: EntityManager, tenantId: string, datasetId: string, version: number, idsJson: string): Promise<{ id: string }[]> {
  return sql<{ id: string }>(
    tx,
    `update dataset_items set valid_to = ?
        where dataset_id = ? and tenant_id = ? and valid_to is null
          and id in (select value::uuid from jsonb_array_elements_text(?::jsonb))
        returning id`,
    [version, datasetId, tenantId, idsJson],
  );
}

export async function findDataset(em: EntityManager, tenantId: string, datasetId: string): Promise<DatasetRow | undefined> {
  const [row] = await sql<DatasetRow>(em, 'select * from datasets where id = ? and tenant_id = ?', [datasetId, tenantId]);
  return row;
}

/** Newest first (ids are UUIDv7), keyset on id; `limit + 1` rows so the caller knows whether a next page exists. */
export async function listDatasets(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<DatasetRow[]> {
  return sql<DatasetRow>(
    em,
    `select * from datasets where tenant_id = ? ${after ? 'and id < ?' : ''} order by id desc limit ?`,
    after ? [tenantId, after, limit + 1] : [tenantId, limit + 1],
  );
}

/** Newest first, keyset on the version number; `limit + 1` rows. */
export async function listVersions(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  before: number | undefined,
  limit: number,
): Promise<DatasetVersionRow[]> {
  return sql<DatasetVersionRow>(
    em,
    `select ${VERSION_COLUMNS} from dataset_versions
      where dataset_id = ? and tenant_id = ? ${before !== undefined ? 'and version < ?' : ''}
      order by version desc limit ?`,
    before !== undefined ? [datasetId, tenantId, before, limit + 1] : [datasetId, tenantId, limit + 1],
  );
}

/**
 * Version `version`'s items in id order after `after`: probes `limit + 1`
 * keys with their sizes (size_bytes, so only the page's rows are read whole)
 * and returns the prefix within `maxBytes` (the first row always), each row
 * carrying `page_rows`, how many keys were probed (for cutRows).
 */
export async function listItemsPage(
  em: EntityManager,
  datasetId: string,
  version: number,
  after: string | undefined,
  limit: number,
  maxBytes: number,
): Promise<(DatasetItemRow & { page_rows: number })[]> {
  return sql<DatasetItemRow & { page_rows: number }>(
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
    after ? [datasetId, version, version, after, limit + 1, maxBytes] : [datasetId, version, version, limit + 1, maxBytes],
  );
}

/** Locks the dataset row until `tx` ends; undefined when it is not the tenant's. */
export async function lockDataset(tx: EntityManager, tenantId: string, datasetId: string): Promise<{ id: string } | undefined> {
  const [row] = await sql<{ id: string }>(tx, 'select id from datasets where id = ? and tenant_id = ? for update', [datasetId, tenantId]);
  return row;
}

/** Deletes the dataset; the foreign keys cascade to its versions, items and runs. */
export async function deleteDataset(tx: EntityManager, datasetId: string): Promise<void> {
  await sql(tx, 'delete from datasets where id = ?', [datasetId]);
}

// Upload staging: dataset_uploads (one row per upload in progress) and its staged lines.

export async function insertUpload(em: EntityManager, id: string, tenantId: string, datasetId: string): Promise<void> {
  await sql(em, 'insert into dataset_uploads (id, tenant_id, dataset_id) values (?, ?, ?)', [id, tenantId, datasetId]);
}

/**
 * Touches the upload and stages `linesJson` (a JSON array of {seq, id, input,
 * expected_output, output, metadata}) in one autocommit statement; returns
 * how many lines were staged: none when the upload row is gone.
 */
export async function stageLines(em: EntityManager, uploadId: string, linesJson: string): Promise<number> {
  const rows = await sql<{ n: number }>(
    em,
    `with u as (update dataset_uploads set touched_at = now() where id = ? returning id),
          ins as (
            insert into dataset_upload_items (upload_id, seq, id, input, expected_output, output, metadata, size_bytes)
            select u.id, x.seq, x.id, coalesce(x.input, 'null'::jsonb), x.expected_output, x.output, x.metadata, ${itemBytesSql('x')}
              from u, jsonb_to_recordset(?::jsonb) as x(seq int, id uuid, input jsonb, expected_output jsonb, output jsonb, metadata jsonb)
            returning 1
          )
     select count(*)::int as n from ins`,
    [uploadId, linesJson],
  );
  return rows[0]?.n ?? 0;
}

/** Locks the upload row until `tx` ends; undefined when the sweep took it. */
export async function lockUpload(tx: EntityManager, uploadId: string): Promise<{ id: string } | undefined> {
  const [row] = await sql<{ id: string }>(tx, 'select id from dataset_uploads where id = ? for update', [uploadId]);
  return row;
}

/** Copies the upload's staged lines, in line order, into dataset_items valid from `version`; returns how many. */
export async function moveStagedLines(tx: EntityManager, tenantId: string, datasetId: string, version: number, uploadId: string): Promise<number> {
  const moved = await sql<{ n: number }>(
    tx,
    `with ins as (
         insert into dataset_items (id, tenant_id, dataset_id, valid_from, valid_to, input, expected_output, output, metadata, size_bytes, created_at)
         select s.id, ?, ?, ?, null, s.input, s.expected_output, s.output, s.metadata, s.size_bytes, now()
           from dataset_upload_items s where s.upload_id = ? order by s.seq
         returning 1
       )
       select count(*)::int as n from ins`,
    [tenantId, datasetId, version, uploadId],
  );
  return moved[0]?.n ?? 0;
}

/** Deletes an upload; its staged lines go with it (cascade). */
export async function deleteUpload(em: EntityManager, uploadId: string): Promise<void> {
  await sql(em, 'delete from dataset_uploads where id = ?', [uploadId]);
}

/** Deletes uploads not touched for `ttlMs`; returns how many. */
export async function deleteStaleUploads(em: EntityManager, ttlMs: number): Promise<number> {
  const rows = await sql<{ id: string }>(em, `delete from dataset_uploads where touched_at < now() - (? * interval '1 millisecond') returning id`, [ttlMs]);
  return rows.length;
}
