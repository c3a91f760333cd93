import { defineEntity } from '@mikro-orm/core';
import { EvalRun } from './eval-run.entity.ts';
import { Tenant } from './tenant.entity.ts';

export const SAMPLE_STATUSES = ['pending', 'done', 'error'] as const;
export type SampleStatus = (typeof SAMPLE_STATUSES)[number];

/**
 * What a run's target produced for one item (and repetition). `pending` while
 * calls are being made: `attempts` is counted before each call is sent. The
 * outcome is written in the statement that inserts the item's result, so an
 * item has its sample exactly when it has its result. No foreign key, like
 * eval_run_items: the eval_runs delete trigger removes a run's samples.
 */
export const EvalRunSample = defineEntity({
  name: 'EvalRunSample',
  tableName: 'eval_run_samples',
  properties: (p) => ({
    run_id: p.manyToOne(EvalRun).mapToPk().fieldName('run_id').primary().createForeignKeyConstraint(false),
    item_id: p.uuid().primary(),
    repetition: p.integer().primary().default(0),
    tenant_id: p.uuid(),
    status: p.enum([...SAMPLE_STATUSES]),
    attempts: p.integer().default(0),
    /** the output as text (JSON outputs serialised) */
    output_text: p.text().nullable(),
    /** the parsed output, when the target answers JSON */
    output: p.json<unknown>().columnType('jsonb').nullable(),
    /** the start of the last raw answer when it could not be parsed */
    raw_start: p.text().nullable(),
    finish_reason: p.text().nullable(),
    prompt_tokens: p.integer().nullable(),
    completion_tokens: p.integer().nullable(),
    cost_usd: p.double().nullable(),
    latency_ms: p.integer().nullable(),
    cached: p.boolean().default(false),
    error: p.text().nullable(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
    updated_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()).onUpdate(() => new Date()),
  }),
});

/** A tenant's successful samples by content hash (target by name, rendered request, repetition); errors are never stored. */
export const SampleCacheEntry = defineEntity({
  name: 'SampleCacheEntry',
  tableName: 'sample_cache',
  properties: (p) => ({
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').primary().deleteRule('cascade'),
    key: p.text().primary(),
    output_text: p.text(),
    output: p.json<unknown>().columnType('jsonb').nullable(),
    finish_reason: p.text().nullable(),
    prompt_tokens: p.integer().nullable(),
    completion_tokens: p.integer().nullable(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
});
