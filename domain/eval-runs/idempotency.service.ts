/**
 * Idempotency-Key for scheduleEvalRun. The first request claims the key in its
 * own committed statement (so a concurrent one sees it in flight: 409); the
 * transaction that inserts the run also stores the answer, so a retry gets the
 * same 202 body and never a second run; a key reused with another body is 422.
 * A claim whose request died before committing is taken over after a minute.
 * Keys live 24 h (the reconciler purges expired ones).
 */
import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { DomainError } from '../shared/errors.ts';
import { sql } from '../shared/sql.ts';
import { toEvalRunDto } from './eval-run.mapper.ts';
import type { EvalRunDto } from './eval-run.schema.ts';
import { insertPendingRun, type RunCaps } from './eval-run.service.ts';

export const IDEMPOTENCY_TTL_HOURS = 24;
const STALE_CLAIM_SECONDS = 60;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function checkIdempotencyKey(key: string): string {
  if (!KEY_PATTERN.test(key)) throw new DomainError('BAD_REQUEST', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  return key;
}

export async function scheduleIdempotently(
  em: EntityManager,
  tenantId: string,
  key: string,
  input: { id: string; eval_version_id: string },
  caps?: RunCaps,
): Promise<{ run: EvalRunDto; replayed: boolean }> {
  const hash = createHash('sha256').update(JSON.stringify([input.id, input.eval_version_id])).digest('hex');
  const claimed = await sql(
    em,
    `insert into idempotency_keys (tenant_id, key, request_hash, status, created_at, updated_at, expires_at)
     values (?, ?, ?, 'in_flight', now(), now(), now() + make_interval(hours => ?))
     on conflict (tenant_id, key) do update
        set request_hash = excluded.request_hash, status = 'in_flight', run_id = null, response = null,
            created_at = now(), updated_at = now(), expires_at = excluded.expires_at
      where idempotency_keys.expires_at < now()
         or (idempotency_keys.status = 'in_flight' and idempotency_keys.request_hash = excluded.request_hash
             and idempotency_keys.updated_at < now() - make_interval(secs => ?))
     returning 1 as claimed`,
    [tenantId, key, hash, IDEMPOTENCY_TTL_HOURS, STALE_CLAIM_SECONDS],
  );
  if (claimed.length === 0) {
    const [row] = await sql<{ request_hash: string; status: 'in_flight' | 'done'; response: EvalRunDto | null }>(
      em,
      'select request_hash, status, response from idempotency_keys where tenant_id = ? and key = ?',
      [tenantId, key],
    );
    if (!row) throw new DomainError('CONFLICT', 'this Idempotency-Key changed state while we read it; retry');
    if (row.request_hash !== hash) {
      throw new DomainError('UNPROCESSABLE_CONTENT', 'this Idempotency-Key was already used with a different request; use a new key');
    }
    if (row.status === 'done' && row.response) return { run: row.response, replayed: true };
    throw new DomainError('CONFLICT', 'a request with this Idempotency-Key is still in progress; retry shortly');
  }
  try {
    const run = await em.transactional(async (tx) => {
      const dto = toEvalRunDto(await insertPendingRun(tx, tenantId, input.id, input.eval_version_id, caps));
      await sql(
        tx,
        `update idempotency_keys set status = 'done', run_id = ?, response = ?::jsonb, updated_at = now() where tenant_id = ? and key = ?`,
        [dto.id, JSON.stringify(dto), tenantId, key],
      );
      return dto;
    });
    return { run, replayed: false };
  } catch (err) {
    // Nothing was created: free the key so the client can retry with it (e.g. after fixing a 404).
    await sql(em, `delete from idempotency_keys where tenant_id = ? and key = ? and status = 'in_flight'`, [tenantId, key]).catch(() => undefined);
    throw err;
  }
}

/** Drops keys past their 24 h. */
export async function purgeExpiredIdempotencyKeys(em: EntityManager): Promise<number> {
  const rows = await sql(em, 'delete from idempotency_keys where expires_at < now() returning 1');
  return rows.length;
}
