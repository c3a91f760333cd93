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
import { claimIdempotencyKey, completeIdempotencyKey, findIdempotencyKey, releaseIdempotencyKey } from './eval-run.repository.ts';

export { purgeExpiredIdempotencyKeys } from './eval-run.repository.ts';

export const IDEMPOTENCY_TTL_HOURS = 24;
const STALE_CLAIM_SECONDS = 60;
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function checkIdempotencyKey(key: string): string {
  if (!KEY_PATTERN.test(key)) throw new DomainError('BAD_REQUEST', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  return key;
}

/**
 * Runs `create` once per (tenant, key): its answer is stored in create's own
 * transaction and replayed to every later request with the same `request`
 * (the values that make two requests the same one).
 */
export async function idempotently<T extends { id: string }>(
  em: EntityManager,
  tenantId: string,
  key: string,
  request: readonly unknown[],
  create: (tx: EntityManager) => Promise<T>,
): Promise<{ result: T; replayed: boolean }> {
  const hash = createHash('sha256').update(JSON.stringify(request)).digest('hex');
  if (!(await claimIdempotencyKey(em, tenantId, key, hash, IDEMPOTENCY_TTL_HOURS, STALE_CLAIM_SECONDS))) {
    const row = await findIdempotencyKey<T>(em, tenantId, key);
    if (!row) throw new DomainError('CONFLICT', 'this Idempotency-Key changed state while we read it; retry');
    if (row.request_hash !== hash) {
      throw new DomainError('UNPROCESSABLE_CONTENT', 'this Idempotency-Key was already used with a different request; use a new key');
    }
    if (row.status === 'done' && row.response) return { result: row.response, replayed: true };
    throw new DomainError('CONFLICT', 'a request with this Idempotency-Key is still in progress; retry shortly');
  }
  try {
    const result = await em.transactional(async (tx) => {
      const created = await create(tx);
      await completeIdempotencyKey(tx, tenantId, key, created.id, created);
      return created;
    });
    return { result, replayed: false };
  } catch (err) {
    // Nothing was created: free the key so the client can retry with it (e.g. after fixing a 404).
    await releaseIdempotencyKey(em, tenantId, key).catch(() => undefined);
    throw err;
  }
}
