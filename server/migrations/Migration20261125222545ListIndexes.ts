import { Migration } from '@mikro-orm/migrations';

export class Migration20261125222545ListIndexes extends Migration {

  override async up(): Promise<void> {
    this.addSql(`drop index "evals_tenant_id_created_at_index";`);

    this.addSql(`create index "evals_tenant_id_id_index" on "evals" ("tenant_id", "id");`);

    this.addSql(`drop index "datasets_tenant_id_created_at_index";`);

    this.addSql(`create index "datasets_tenant_id_id_index" on "datasets" ("tenant_id", "id");`);

    this.addSql(`drop index "eval_runs_dataset_created_idx";`);

    this.addSql(`create index "eval_runs_dataset_id_idx" on "eval_runs" ("dataset_id", "id");`);

    this.addSql(`create index "eval_run_items_status_idx" on "eval_run_items" ("run_id", "status", "item_id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "datasets_tenant_id_id_index";`);

    this.addSql(`create index "datasets_tenant_id_created_at_index" on "datasets" ("tenant_id", "created_at");`);

    this.addSql(`drop index "eval_run_items_status_idx";`);

    this.addSql(`drop index "eval_runs_dataset_id_idx";`);

    this.addSql(`create index "eval_runs_dataset_created_idx" on "eval_runs" ("dataset_id", "created_at", "id");`);

    this.addSql(`drop index "evals_tenant_id_id_index";`);

    this.addSql(`create index "evals_tenant_id_created_at_index" on "evals" ("tenant_id", "created_at");`);
  }

}
