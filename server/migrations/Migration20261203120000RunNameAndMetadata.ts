import { Migration } from '@mikro-orm/migrations';

/**
 * A run may carry a name and a small metadata object (a branch, a commit, a
 * model under test), returned with it and used to filter a dataset's runs.
 * Both are nullable, so existing runs and requests without them are as before.
 */
export class Migration20261203120000RunNameAndMetadata extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "eval_runs" add column "name" text null, add column "metadata" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "eval_runs" drop column if exists "metadata", drop column if exists "name";`);
  }

}
