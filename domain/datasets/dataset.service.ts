/**
 * datasets use cases. A new version never copies unchanged items: it adds
 * rows valid from the new version, and closes (valid_to) removed ones.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { isActiveRunStatus } from '../../entities/index.ts';
import { lockDatasetRuns } from '../eval-runs/eval-run.repository.ts';
import { DomainError, notFound } from '../shared/errors.ts';
import { cutRows } from '../shared/pagination.ts';
import * as repo from './dataset.repository.ts';
import type { DatasetItemRow, DatasetRow, DatasetVersionRow } from './dataset.repository.ts';

export { itemBytesSql, type DatasetItemRow, type DatasetRow, type DatasetVersionRow } from './dataset.repository.ts';

export interface NewItem {
  input: unknown;
  expected_output?: unknown;
  output?: unknown;
  metadata?: unknown;
}

/** Creates a dataset and its version 1, which holds no items. */
export async function createDataset(
  em: EntityManager,
  tenantId: string,
  input: { name: string; description?: string | null },
): Promise<{ dataset: DatasetRow; version: DatasetVersionRow }> {
  return em.transactional(async (tx) => {
    const dataset = await repo.insertDataset(tx, uuidv7(), tenantId, input.name, input.description ?? null);
    const version = await repo.insertFirstVersion(tx, uuidv7(), tenantId, dataset.id);
    return { dataset, version };
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
  const row = await repo.bumpLatestVersion(tx, tenantId, datasetId);
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
  return repo.insertVersion(tx, uuidv7(), tenantId, datasetId, version, itemCount);
}

/** Inserts items valid from `version`, in one statement; returns their new ids. */
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
  await repo.insertItems(tx, tenantId, datasetId, version, payload);
  return ids;
}

/** Refuses (413, naming the item) an item whose JSON is longer than `maxItemBytes`. */
export function checkItemSizes(items: readonly NewItem[], maxItemBytes: number): void {
  items.forEach((item, i) => {
    const bytes = Buffer.byteLength(JSON.stringify(item));
    if (bytes > maxItemBytes) throw new DomainError('PAYLOAD_TOO_LARGE', `items[${i}] is ${bytes} bytes; the limit is ${maxItemBytes}`);
  });
}

/** A new version holding the previous items plus `items`; with `limits`, each item's size is checked first. */
export async function addDatasetItems(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  items: readonly NewItem[],
  limits?: { maxItemBytes: number },
): Promise<DatasetVersionRow> {
  if (limits) checkItemSizes(items, limits.maxItemBytes);
  return em.transactional(async (tx) => {
    const { version, previousCount } = await openNextVersion(tx, tenantId, datasetId);
    await insertItems(tx, tenantId, datasetId, version, items);
    return insertVersionRow(tx, tenantId, datasetId, version, previousCount + items.length);
  });
}

export async function findDataset(em: EntityManager, tenantId: string, datasetId: string): Promise<DatasetRow> {
  const row = await repo.findDataset(em, tenantId, datasetId);
  if (!row) throw notFound('dataset', datasetId);
  return row;
}

/** `limit + 1` rows, newest first, after the key `after`. */
export async function listDatasets(em: EntityManager, tenantId: string, after: string | undefined, limit: number): Promise<DatasetRow[]> {
  return repo.listDatasets(em, tenantId, after, limit);
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
    const closed = await repo.closeItems(tx, tenantId, datasetId, version, JSON.stringify(unique));
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

/** `limit + 1` versions, newest first, below the version number `before`. */
export async function listDatasetVersions(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  before: number | undefined,
  limit: number,
): Promise<DatasetVersionRow[]> {
  await findDataset(em, tenantId, datasetId);
  return repo.listVersions(em, tenantId, datasetId, before, limit);
}

/**
 * A version's items in id order, a keyset page at a time, cut short when the
 * page would exceed `maxBytes` (a single larger row still comes alone).
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
  return cutRows(await repo.listItemsPage(em, datasetId, v, after, limit, maxBytes));
}

/**
 * Deletes a dataset with its versions and runs (short: one row per version and run); refused while one of its runs
 * is unfinished. Its items and its runs' results, samples and chunks are deleted in the background in bounded
 * batches (the triggers on datasets and eval_runs mark them in `deletions`, see eval-runs/run-deletion.service.ts):
 * the caller enqueues that purge (kickPurge).
 */
export async function deleteDataset(em: EntityManager, tenantId: string, datasetId: string): Promise<void> {
  await em.transactional(async (tx) => {
    if (!(await repo.lockDataset(tx, tenantId, datasetId))) throw notFound('dataset', datasetId);
    // Lock the dataset's runs before looking at them: a run retried meanwhile cannot turn running
    // behind this check, and a chunk still recording results (it holds its run FOR KEY SHARE for
    // the statement) commits first; a later one finds no run and records nothing.
    const runs = await lockDatasetRuns(tx, datasetId);
    const active = runs.find((r) => isActiveRunStatus(r.status));
    if (active) {
      throw new DomainError('CONFLICT', `dataset ${datasetId} has a ${active.status} run (${active.id}); cancel it or wait for it to finish`);
    }
    await repo.deleteDataset(tx, datasetId);
  });
}
