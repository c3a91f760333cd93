import { defineEntity } from '@mikro-orm/core';
import { Tenant } from './tenant.entity.ts';

/** `in_flight` while the first request runs, `done` once its answer is stored. */
export const IDEMPOTENCY_KEY_STATUSES = ['in_flight', 'done'] as const;
export type IdempotencyKeyStatus = (typeof IDEMPOTENCY_KEY_STATUSES)[number];

/**
 * An `Idempotency-Key` a tenant sent with scheduleEvalRun: the first request
 * claims it (`in_flight`), and the transaction that creates the run stores its
 * answer (`done`), so a retry gets the very same 202 body and never a second run.
 */
export const IdempotencyKey = defineEntity({
  name: 'IdempotencyKey',
  tableName: 'idempotency_keys',
  properties: (p) => ({
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').primary().deleteRule('cascade'),
    key: p.text().primary(),
    /** SHA-256 of the request it was first used with */
    request_hash: p.text(),
    status: p.enum([...IDEMPOTENCY_KEY_STATUSES]),
    run_id: p.uuid().nullable(),
    response: p.json<unknown>().columnType('jsonb').nullable(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
    updated_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
    expires_at: p.datetime().columnType('timestamptz').index(),
  }),
});
