import { Migration } from '@mikro-orm/migrations';

/**
 * Deleting runs and datasets without one big transaction (issue #16).
 *
 * - `deletions`: what is still to be deleted in the background, one row per
 *   deleted run (kind `run`: its results, samples and chunks) or dataset
 *   (kind `dataset`: its items). The row is the mark that makes the work
 *   resumable: it is written in the statement that deletes the run's (or the
 *   dataset's) own row, and deleted only once nothing of it is left.
 * - The statement-level trigger on eval_runs no longer deletes the results of
 *   the runs deleted (one statement over every result: about 70 M of them fit
 *   under the 120 s statement timeout, and the deleting request waited for
 *   it); it records those runs in `deletions` instead, for every delete of
 *   eval_runs (DELETE /v1/eval-runs/{id}, retention, the cascades from
 *   datasets, dataset and eval versions, tenants, or by hand).
 * - eval_run_chunks loses its foreign key to eval_runs (its cascade deleted a
 *   run's chunks in the deleting statement), and dataset_items its foreign
 *   key to datasets (same, for a dataset's items); a trigger on datasets
 *   records deleted datasets in `deletions`. Nothing can add a chunk or an
 *   item to a run or a dataset that is gone: chunks are inserted by the start
 *   transaction holding the run FOR UPDATE, items by a new version holding
 *   the dataset row FOR UPDATE.
 * - A partial index for the retention sweep (finished runs by completed_at),
 *   and one on webhook_deliveries.run_id: its cascade from a deleted run
 *   otherwise scans every delivery kept (the event index leads by webhook_id),
 *   once per run, and retention deletes up to 500 runs per sweep.
 * - Autovacuum on the hot tables at 1-2 % of the table instead of 20 %: at
 *   hundreds of millions of rows the default waits for tens of millions of
 *   dead rows (batched deletes) or new rows (recording) before vacuuming or
 *   analyzing, and stale statistics turn the chunk statements' plans bad.
 */
export class Migration20261204220000RunDeletions extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "deletions" (
      "kind" text not null check ("kind" in ('run', 'dataset')),
      "id" uuid not null,
      "tenant_id" uuid not null,
      "created_at" timestamptz not null default now(),
      constraint "deletions_pkey" primary key ("kind", "id"));`);
    this.addSql(`create index "deletions_created_at_idx" on "deletions" ("created_at");`);
    this.addSql(`create or replace function "eval_runs_delete_results"() returns trigger language plpgsql as $$
begin
  insert into "deletions" ("kind", "id", "tenant_id", "created_at")
  select 'run', "id", "tenant_id", now() from "deleted_runs"
  on conflict do nothing;
  return null;
end
$$;`);
    this.addSql(`alter table "eval_run_chunks" drop constraint "eval_run_chunks_run_id_foreign";`);
    this.addSql(`alter table "dataset_items" drop constraint "dataset_items_dataset_id_foreign";`);
    this.addSql(`create function "datasets_delete_items"() returns trigger language plpgsql as $$
begin
  insert into "deletions" ("kind", "id", "tenant_id", "created_at")
  select 'dataset', "id", "tenant_id", now() from "deleted_datasets"
  on conflict do nothing;
  return null;
end
$$;`);
    this.addSql(`create trigger "datasets_delete_items" after delete on "datasets" referencing old table as "deleted_datasets" for each statement execute function "datasets_delete_items"();`);
    this.addSql(`create index "eval_runs_finished_idx" on "eval_runs" ("completed_at") where "status" in ('completed', 'failed');`);
    this.addSql(`create index "webhook_deliveries_run_id_idx" on "webhook_deliveries" ("run_id");`);
    for (const table of ['eval_run_items', 'eval_run_samples', 'eval_run_chunks']) {
      this.addSql(`alter table "${table}" set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01);`);
    }
  }

  override async down(): Promise<void> {
    for (const table of ['eval_run_items', 'eval_run_samples', 'eval_run_chunks']) {
      this.addSql(`alter table "${table}" reset (autovacuum_vacuum_scale_factor, autovacuum_vacuum_insert_scale_factor, autovacuum_analyze_scale_factor);`);
    }
    this.addSql(`drop index if exists "webhook_deliveries_run_id_idx";`);
    this.addSql(`drop index if exists "eval_runs_finished_idx";`);
    this.addSql(`drop trigger "datasets_delete_items" on "datasets";`);
    this.addSql(`drop function "datasets_delete_items"();`);
    this.addSql(`delete from "dataset_items" i where not exists (select 1 from "datasets" d where d."id" = i."dataset_id");`);
    this.addSql(`alter table "dataset_items" add constraint "dataset_items_dataset_id_foreign" foreign key ("dataset_id") references "datasets" ("id") on update cascade on delete cascade;`);
    this.addSql(`delete from "eval_run_chunks" c where not exists (select 1 from "eval_runs" r where r."id" = c."run_id");`);
    this.addSql(`alter table "eval_run_chunks" add constraint "eval_run_chunks_run_id_foreign" foreign key ("run_id") references "eval_runs" ("id") on update cascade on delete cascade;`);
    this.addSql(`delete from "eval_run_items" i where not exists (select 1 from "eval_runs" r where r."id" = i."run_id");`);
    this.addSql(`delete from "eval_run_samples" s where not exists (select 1 from "eval_runs" r where r."id" = s."run_id");`);
    this.addSql(`create or replace function "eval_runs_delete_results"() returns trigger language plpgsql as $$
begin
  delete from "eval_run_items" where "run_id" = any (array(select "id" from "deleted_runs"));
  delete from "eval_run_samples" where "run_id" = any (array(select "id" from "deleted_runs"));
  return null;
end
$$;`);
    this.addSql(`drop table if exists "deletions";`);
  }

}
