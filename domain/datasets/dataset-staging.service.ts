/**
 * Staging of NDJSON uploads. The upload used to stream inside one transaction,
 * so a client that stalled mid-body held a pooled connection (and the
 * dataset's row lock) for as long as it liked: a handful of slow uploads took
 * the whole pool. Now every batch of validated lines is written in its own
 * autocommit statement (the connection goes back to the pool between
 * batches), and one short transaction at the end moves the staged lines into
 * dataset_items and creates the version, so the version appears whole or not
 * at all. Staged lines of an upload that fails are deleted at once; those of
 * an upload whose process died are deleted by purgeStaleUploads.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { DomainError } from '../shared/errors.ts';
import { sql } from '../shared/sql.ts';
import { insertVersionRow, itemBytesSql, openNextVersion, type DatasetVersionRow, type NewItem } from './dataset.service.ts';

/** Registers an upload; its staged lines are kept while it is touched within the TTL. */
export async function openUpload(em: EntityManager, tenantId: string, datasetId: string): Promise<string> {
  const id = uuidv7();
  await sql(em, 'insert into dataset_uploads (id, tenant_id, dataset_id) values (?, ?, ?)', [id, tenantId, datasetId]);
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
    [uploadId, payload],
  );
  if ((rows[0]?.n ?? 0) !== items.length) throw expired();
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
    const [upload] = await sql<{ id: string }>(tx, 'select id from dataset_uploads where id = ? for update', [uploadId]);
    if (!upload) throw expired();
    const { version, previousCount } = await openNextVersion(tx, tenantId, datasetId);
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
    await sql(tx, 'delete from dataset_uploads where id = ?', [uploadId]);
    return insertVersionRow(tx, tenantId, datasetId, version, previousCount + (moved[0]?.n ?? 0));
  });
}

/** Deletes an upload's staged lines (the cascade from its row). */
export async function abandonUpload(em: EntityManager, uploadId: string): Promise<void> {
  await sql(em, 'delete from dataset_uploads where id = ?', [uploadId]);
}

/** Deletes uploads (and their staged lines) not touched for `ttlMs`: those of a crashed process, or of a client gone silent. */
export async function purgeStaleUploads(em: EntityManager, ttlMs: number): Promise<number> {
  const rows = await sql<{ id: string }>(em, `delete from dataset_uploads where touched_at < now() - (? * interval '1 millisecond') returning id`, [ttlMs]);
  return rows.length;
}
