import { Migration } from '@mikro-orm/migrations';

/**
 * Drops the foreign key eval_run_items.run_id → eval_runs. Every chunk statement
 * (recordResults) ran one RI check per inserted result, each locking the run's
 * row FOR KEY SHARE while the same statement updated that row: ≈ 8 µs of
 * PostgreSQL CPU per result, the largest cost of recording. What it guaranteed
 * is kept otherwise:
 * - no result for a run that does not exist: recordResults locks the run FOR KEY
 *   SHARE once per statement and inserts only while it is running;
 * - no result outlives its run: deleteDataset deletes its runs' results itself,
 *   and this trigger deletes the results of runs deleted any other way (the
 *   cascades from tenants, datasets, dataset versions and eval versions, or by
 *   hand). It runs once per statement, so it costs nothing when results are
 *   inserted.
 */
export class Migration20261126012904ResultsWithoutRunForeignKey extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "eval_run_items" drop constraint "eval_run_items_run_id_foreign";`);
    this.addSql(`create function "eval_runs_delete_results"() returns trigger language plpgsql as $$
begin
  delete from "eval_run_items" where "run_id" = any (array(select "id" from "deleted_runs"));
  return null;
end
$$;`);
    this.addSql(`create trigger "eval_runs_delete_results" after delete on "eval_runs" referencing old table as "deleted_runs" for each statement execute function "eval_runs_delete_results"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger "eval_runs_delete_results" on "eval_runs";`);
    this.addSql(`drop function "eval_runs_delete_results"();`);
    this.addSql(`delete from "eval_run_items" i where not exists (select 1 from "eval_runs" r where r."id" = i."run_id");`);
    this.addSql(`alter table "eval_run_items" add constraint "eval_run_items_run_id_foreign" foreign key ("run_id") references "eval_runs" ("id") on update cascade on delete cascade;`);
  }

}
