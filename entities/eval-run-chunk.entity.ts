import { defineEntity } from '@mikro-orm/core';
import { EvalRun } from './eval-run.entity.ts';

/**
 * A slice (first_item_id..last_item_id, in id order) of a run's pinned items.
 * Written by `run start` before any chunk job is enqueued, so the reconciler
 * can rebuild every missing job from Postgres alone.
 */
export const EvalRunChunk = defineEntity({
  name: 'EvalRunChunk',
  tableName: 'eval_run_chunks',
  properties: (p) => ({
    // No foreign key (migration Migration20261204220000RunDeletions): a deleted run's chunks go in the background,
    // with its results, in bounded batches (domain/eval-runs/run-deletion.service.ts).
    run_id: p.manyToOne(EvalRun).mapToPk().fieldName('run_id').primary().createForeignKeyConstraint(false),
    chunk_index: p.integer().primary(),
    first_item_id: p.uuid(),
    last_item_id: p.uuid(),
    item_count: p.integer(),
    done_at: p.datetime().columnType('timestamptz').nullable(),
    /** Starts that never ended in a worker's hands (the process died holding the chunk); see CHUNK_MAX_CRASHES. */
    crash_count: p.integer().default(0),
  }),
});
