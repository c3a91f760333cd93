import { defineEntity } from '@mikro-orm/core';
import { Dataset } from './dataset.entity.ts';
import { DatasetVersion } from './dataset-version.entity.ts';
import { EvalVersion } from './eval-version.entity.ts';
import { Tenant } from './tenant.entity.ts';

/** One criterion's counters in eval_runs.criteria_stats. */
export interface CriterionStatsRow {
  name: string;
  passed_count: number;
  failed_count: number;
  error_count: number;
  score_sum: number;
}

export const RUN_STATUSES = ['pending', 'running', 'completed', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** A run still being scored: the reconciler's and the active-run cap's partial indexes below cover exactly these. */
export const ACTIVE_RUN_STATUSES = ['pending', 'running'] as const satisfies readonly RunStatus[];
export const isActiveRunStatus = (status: string): boolean => (ACTIVE_RUN_STATUSES as readonly string[]).includes(status);
/** A run that ended; its webhooks fire once per ending. */
export const FINISHED_RUN_STATUSES = ['completed', 'failed'] as const satisfies readonly RunStatus[];

/**
 * One run of an eval version over a pinned dataset version. The counters are
 * only ever changed in the transaction that inserts or deletes the results
 * they count, so they always equal count(eval_run_items).
 */
export const EvalRun = defineEntity({
  name: 'EvalRun',
  tableName: 'eval_runs',
  properties: (p) => ({
    id: p.uuid().primary(),
    tenant_id: p.manyToOne(Tenant).mapToPk().fieldName('tenant_id').deleteRule('cascade'),
    dataset_id: p.manyToOne(Dataset).mapToPk().fieldName('dataset_id').deleteRule('cascade'),
    dataset_version_id: p.manyToOne(DatasetVersion).mapToPk().fieldName('dataset_version_id').deleteRule('cascade'),
    eval_version_id: p.manyToOne(EvalVersion).mapToPk().fieldName('eval_version_id').deleteRule('cascade'),
    status: p.enum([...RUN_STATUSES]),
    item_count: p.integer(),
    completed_count: p.integer().default(0),
    passed_count: p.integer().default(0),
    failed_count: p.integer().default(0),
    error_count: p.integer().default(0),
    /** sum of the scores of passed and failed items; mean_score = score_sum / (passed + failed) */
    score_sum: p.double().default(0),
    /** tokens and cost spent by llm_judge, every attempt included (so never less than the results' sums) */
    prompt_tokens: p.bigint('number').default(0),
    completion_tokens: p.bigint('number').default(0),
    cost_usd: p.double().nullable(),
    started_at: p.datetime().columnType('timestamptz').nullable(),
    completed_at: p.datetime().columnType('timestamptz').nullable(),
    error_message: p.text().nullable(),
    /** the caller's label for the run (a model, a prompt, a commit) */
    name: p.text().nullable(),
    /** the caller's small JSON object about the run; listEvalRuns filters by containment */
    metadata: p.json<Record<string, unknown>>().columnType('jsonb').nullable(),
    /** what produces each item's output (domain/targets/target.schema.ts); null: the output stored with the item */
    target: p.json<Record<string, unknown>>().columnType('jsonb').nullable(),
    /** the run whose samples this run re-scores (no provider call) */
    outputs_from_run_id: p.uuid().nullable(),
    /** whether generation may reuse the tenant's cached samples */
    use_cache: p.boolean().default(true),
    /** once the recorded cost reaches it no new provider call starts and the run fails "budget exceeded" */
    max_cost_usd: p.double().nullable(),
    /**
     * per criterion of a run with several criteria, in their order: {name, passed_count, failed_count,
     * error_count, score_sum}, moved by the statements that move the run's counters; null for one evaluator
     */
    criteria_stats: p.json<CriterionStatsRow[]>().columnType('jsonb').nullable(),
    /** each item is generated (or read) and scored this many times (1–10) */
    repetitions: p.integer().default(1),
    /** an item passes when at least this many of its repetitions pass; null: all of them */
    repetition_min_passed: p.integer().nullable(),
    /** sum over the scored (not error) items of their passed repetitions: pass@1 = passed_samples / (scored × repetitions) */
    passed_samples: p.bigint('number').default(0),
    /** scored items every repetition of which passed (pass^n) */
    all_passed_count: p.integer().default(0),
    /** sum over the scored items of their scores' standard deviation across repetitions */
    score_sd_sum: p.double().default(0),
    /** set once this ending's webhook deliveries are enqueued; null while a finished run still owes them (swept by the reconciler) */
    notified_at: p.datetime().columnType('timestamptz').nullable(),
    created_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()),
    updated_at: p.datetime().columnType('timestamptz').onCreate(() => new Date()).onUpdate(() => new Date()),
  }),
  indexes: [
    { name: 'eval_runs_dataset_id_idx', properties: ['dataset_id', 'id'] },
    { name: 'eval_runs_dataset_version_idx', properties: ['dataset_version_id'] },
    // The reconciler only ever looks for unfinished runs; keep that index tiny.
    {
      name: 'eval_runs_unfinished_idx',
      expression: `create index "eval_runs_unfinished_idx" on "eval_runs" ("status", "updated_at") where "status" in ('pending', 'running')`,
    },
    // the per-tenant cap on active runs counts these on every schedule
    {
      name: 'eval_runs_tenant_active_idx',
      expression: `create index "eval_runs_tenant_active_idx" on "eval_runs" ("tenant_id") where "status" in ('pending', 'running')`,
    },
    // Finished runs by when they ended: the retention sweep (RESULT_RETENTION_DAYS) takes the oldest.
    {
      name: 'eval_runs_finished_idx',
      expression: `create index "eval_runs_finished_idx" on "eval_runs" ("completed_at") where "status" in ('completed', 'failed')`,
    },
    // Finished runs whose webhooks are not enqueued yet: normally none, so the sweep costs nothing.
    {
      name: 'eval_runs_unnotified_idx',
      expression: `create index "eval_runs_unnotified_idx" on "eval_runs" ("completed_at") where "notified_at" is null and "status" in ('completed', 'failed')`,
    },
  ],
});
