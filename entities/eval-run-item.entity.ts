import { defineEntity } from '@mikro-orm/core';
import { EvalRun } from './eval-run.entity.ts';

export const ITEM_STATUSES = ['passed', 'failed', 'error'] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** The one result of one item in one run: the primary key (run_id, item_id) is what makes scoring exactly-once. */
export const EvalRunItem = defineEntity({
  name: 'EvalRunItem',
  tableName: 'eval_run_items',
  properties: (p) => ({
    // No foreign keys at all on this table: each would cost a check per inserted result on the
    // hottest path. Not even on run_id: its check per result (one per row of a chunk's statement)
    // locks the run's row that the same statement updates. Instead:
    // - recordResults holds the run FOR KEY SHARE once per statement, so a run cannot be deleted
    //   while results for it are being inserted, and no result is inserted for a deleted run;
    // - every delete of runs (DELETE /v1/eval-runs/{id}, retention, the cascades from tenants,
    //   datasets, dataset and eval versions) marks them in `deletions` through a statement-level
    //   trigger on eval_runs (migration Migration20261204220000RunDeletions), and their results are
    //   then deleted in the background in bounded batches (domain/eval-runs/run-deletion.service.ts).
    // The run's own key ties a result to its item (item_id) and tenant (tenant_id).
    run_id: p.manyToOne(EvalRun).mapToPk().fieldName('run_id').primary().createForeignKeyConstraint(false),
    item_id: p.uuid().primary(),
    tenant_id: p.uuid(),
    status: p.enum([...ITEM_STATUSES]),
    score: p.double().nullable(),
    passed: p.boolean().nullable(),
    reason: p.text().nullable(),
    error: p.text().nullable(),
    attempts: p.integer(),
    latency_ms: p.integer(),
    prompt_tokens: p.integer().nullable(),
    completion_tokens: p.integer().nullable(),
    cost_usd: p.double().nullable(),
    /** each criterion's outcome ({name, status, score, passed, reason, error}) for a run with several criteria; null for one evaluator */
    scores: p.json<Record<string, unknown>[]>().columnType('jsonb').nullable(),
    /** each repetition's outcome ({repetition, status, score, passed, reason, error, scores}) for a run with several; null for one */
    repetitions: p.json<Record<string, unknown>[]>().columnType('jsonb').nullable(),
    /** how many repetitions passed (null for one repetition) */
    passed_repetitions: p.integer().nullable(),
    /** the sample standard deviation of the repetitions' scores (null for one repetition or an error) */
    score_sd: p.double().nullable(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
  }),
  // listEvalRunItems?status=error must not scan a million passed rows to find the errors
  indexes: [{ name: 'eval_run_items_status_idx', properties: ['run_id', 'status', 'item_id'] }],
});
