import { Migration } from '@mikro-orm/migrations';

/**
 * eval_run_chunks.crash_count: starts of the chunk that did not end in this
 * process's hands (the worker died, was SIGKILLed or OOM-killed while holding
 * it). A chunk that keeps killing its workers ends as `error` items instead of
 * a crash loop (CHUNK_MAX_CRASHES).
 *
 * reconcile_cursors: where the reconciler's sweep of pending and running runs
 * stopped when its per-sweep budget ran out, so that the next sweep goes on
 * from there instead of starting over (and never reaching the runs after the
 * first budget's worth); the sweep walks the active runs in id order, through
 * a partial index on id that holds only pending and running runs.
 */
export class Migration20261202034500ChunkCrashesAndReconcileCursor extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "eval_run_chunks" add column "crash_count" int not null default 0;`);
    this.addSql(`create table "reconcile_cursors" ("name" text not null, "after_id" uuid null, "updated_at" timestamptz not null default now(), constraint "reconcile_cursors_pkey" primary key ("name"));`);
    this.addSql(`create index "eval_runs_active_id_idx" on "eval_runs" ("id") where "status" in ('pending', 'running');`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "eval_runs_active_id_idx";`);
    this.addSql(`drop table "reconcile_cursors";`);
    this.addSql(`alter table "eval_run_chunks" drop column "crash_count";`);
  }

}
