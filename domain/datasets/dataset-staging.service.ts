/**
 * NDJSON uploads, staged. No connection or transaction is held while the
 * client sends (a client that stalls mid-body would otherwise hold a pooled
 * connection, and the dataset's row lock, for as long as it liked): every
 * batch of validated lines is written in its own autocommit statement (the
 * connection goes back to the pool between batches), and one short
 * transaction at the end moves the staged lines into dataset_items and
 * creates the version, so the version appears whole or not at all. Staged
 * lines of an upload that fails are deleted at once; those of an upload whose
 * process died are deleted by purgeStaleUploads.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Readable } from 'node:stream';
import { v7 as uuidv7 } from 'uuid';
import type { Logger } from '../shared/deps.ts';
import { DomainError, formatIssues } from '../shared/errors.ts';
import * as repo from './dataset.repository.ts';
import { newItemSchema } from './dataset.schema.ts';
import { findDataset, insertVersionRow, openNextVersion, type DatasetVersionRow, type NewItem } from './dataset.service.ts';
import { ndjsonLines } from './ndjson.ts';

const MAX_REPORTED = 20;
const BATCH_ITEMS = 1_000;
/** Bytes of validated lines held before they are staged; the body guards charge an upload this plus one line. */
export const BATCH_BYTES = 4 * 1024 * 1024;

/** Registers an upload; its staged lines are kept while it is touched within the TTL. */
export async function openUpload(em: EntityManager, tenantId: string, datasetId: string): Promise<string> {
  const id = uuidv7();
  await repo.insertUpload(em, id, tenantId, datasetId);
  return id;
}

/**
 * Stages a batch (one autocommit statement) and touches the upload. Fails when
 * the sweep already took the upload (it was idle past the TTL).
 */
export async function stageItems(em: EntityManager, uploadId: string, firstSeq: number, items: readonly NewItem[]): Promise<void> {
  const payload = JSON.stringify(
    items.map((it, i) => ({
      seq: firstSeq + i,
      id: uuidv7(),
      input: it.input ?? null,
      expected_output: it.expected_output ?? null,
      output: it.output ?? null,
      metadata: it.metadata ?? null,
    })),
  );
  if ((await repo.stageLines(em, uploadId, payload)) !== items.length) throw expired();
}

const expired = () => new DomainError('CONFLICT', 'the upload was idle too long and was abandoned; send it again');

/**
 * The one transaction of an upload: opens the next version (locking the
 * dataset row only for this statement's duration), moves the staged lines in,
 * and creates the version row.
 */
export async function commitUpload(em: EntityManager, tenantId: string, datasetId: string, uploadId: string): Promise<DatasetVersionRow> {
  return em.transactional(async (tx) => {
    // FOR UPDATE: a concurrent sweep waits for this commit, then finds nothing to delete.
    if (!(await repo.lockUpload(tx, uploadId))) throw expired();
    const { version, previousCount } = await openNextVersion(tx, tenantId, datasetId);
    const moved = await repo.moveStagedLines(tx, tenantId, datasetId, version, uploadId);
    await repo.deleteUpload(tx, uploadId);
    return insertVersionRow(tx, tenantId, datasetId, version, previousCount + moved);
  });
}

/** Deletes an upload's staged lines (the cascade from its row). */
export async function abandonUpload(em: EntityManager, uploadId: string): Promise<void> {
  await repo.deleteUpload(em, uploadId);
}

/** Deletes uploads (and their staged lines) not touched for `ttlMs`: those of a crashed process, or of a client gone silent. */
export async function purgeStaleUploads(em: EntityManager, ttlMs: number): Promise<number> {
  return repo.deleteStaleUploads(em, ttlMs);
}

export interface UploadLimits {
  MAX_ITEM_BYTES: number;
  MAX_UPLOAD_ITEMS: number;
  UPLOAD_STAGING_TTL_MS: number;
}

/**
 * The upload use case: a new version of the dataset holding its items plus
 * one per NDJSON line of `stream`. Lines are parsed and validated one at a
 * time and staged in bounded batches; either every line lands in the version
 * or, when any line is bad, nothing is stored and the error lists bad lines by
 * number.
 */
export async function uploadDatasetItems(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  stream: Readable,
  limits: UploadLimits,
  log: Pick<Logger, 'warn'>,
): Promise<DatasetVersionRow> {
  await findDataset(em, tenantId, datasetId);
  // Stale uploads are swept here as well as by the reconciler, so an API-only deployment cleans up too.
  await purgeStaleUploads(em, limits.UPLOAD_STAGING_TTL_MS);
  const uploadId = await openUpload(em, tenantId, datasetId);
  try {
    return await receive(em, stream, uploadId, limits, () => commitUpload(em, tenantId, datasetId, uploadId));
  } catch (err) {
    await abandonUpload(em, uploadId).catch((cleanupErr: unknown) => log.warn({ err: cleanupErr, uploadId }, 'staged upload left for the sweep'));
    throw err;
  }
}

/** Validates and stages the lines; commits when every line was good. */
async function receive(
  em: EntityManager,
  stream: Readable,
  uploadId: string,
  limits: UploadLimits,
  commit: () => Promise<DatasetVersionRow>,
): Promise<DatasetVersionRow> {
  const { MAX_ITEM_BYTES, MAX_UPLOAD_ITEMS, UPLOAD_STAGING_TTL_MS } = limits;
  const problems: string[] = [];
  let badLines = 0;
  let count = 0;
  let staged = 0;
  let batch: NewItem[] = [];
  let batchBytes = 0;
  let touchedAt = Date.now();
  const flush = async () => {
    if (batch.length > 0 && badLines === 0) {
      await stageItems(em, uploadId, staged, batch);
      staged += batch.length;
      touchedAt = Date.now();
    }
    batch = [];
    batchBytes = 0;
  };
  for await (const line of ndjsonLines(stream, MAX_ITEM_BYTES)) {
    const problem = (message: string) => {
      badLines++;
      if (problems.length < MAX_REPORTED) problems.push(`line ${line.lineNo}: ${message}`);
    };
    if (line.tooLong) {
      problem(`longer than ${MAX_ITEM_BYTES} bytes`);
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line.text);
    } catch {
      problem('not valid JSON');
      continue;
    }
    const parsed = newItemSchema.safeParse(value);
    if (!parsed.success) {
      problem(formatIssues(parsed.error.issues).replace(/^invalid input: /, ''));
      continue;
    }
    count++;
    if (count > MAX_UPLOAD_ITEMS) throw new DomainError('PAYLOAD_TOO_LARGE', `at most ${MAX_UPLOAD_ITEMS} items per upload`);
    if (badLines > 0) continue; // keep validating to report every bad line, but store nothing
    batch.push(parsed.data);
    batchBytes += line.text.length;
    // A slow but live upload still touches its row well within the TTL, so the sweep leaves it alone.
    if (batch.length >= BATCH_ITEMS || batchBytes >= BATCH_BYTES || Date.now() - touchedAt > UPLOAD_STAGING_TTL_MS / 4) await flush();
  }
  if (badLines > 0) {
    throw new DomainError('BAD_REQUEST', `${badLines} bad line(s), nothing stored: ${problems.join('; ')}${badLines > problems.length ? '; …' : ''}`);
  }
  if (count === 0) throw new DomainError('BAD_REQUEST', 'the upload holds no items (one JSON object per line)');
  await flush();
  return commit();
}
