import { Migration } from '@mikro-orm/migrations';

/**
 * eval_run_comparisons: a pair of finished runs' compare summary, computed
 * once (a join of both runs' results, ≈ 1 s at 1 M vs 1 M) and kept. Each row
 * holds the versions of both runs it was computed at (their status, counters,
 * updated_at and completed_at, which every statement that changes a run's
 * results moves); a row whose versions are no longer the runs' is recomputed
 * and overwritten. Deleting either run deletes its rows (run ids are never
 * reused anyway); the index on head_run_id serves that cascade.
 */
export class Migration20261204210000CompareSummaries extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "eval_run_comparisons" (
      "base_run_id" uuid not null,
      "head_run_id" uuid not null,
      "tenant_id" uuid not null,
      "base_version" text not null,
      "head_version" text not null,
      "summary" jsonb not null,
      "computed_at" timestamptz not null,
      constraint "eval_run_comparisons_pkey" primary key ("base_run_id", "head_run_id"));`);
    this.addSql(`create index "eval_run_comparisons_head_run_id_index" on "eval_run_comparisons" ("head_run_id");`);
    this.addSql(`alter table "eval_run_comparisons" add constraint "eval_run_comparisons_base_run_id_foreign" foreign key ("base_run_id") references "eval_runs" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_run_comparisons" add constraint "eval_run_comparisons_head_run_id_foreign" foreign key ("head_run_id") references "eval_runs" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_run_comparisons" add constraint "eval_run_comparisons_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "eval_run_comparisons" cascade;`);
  }

}
