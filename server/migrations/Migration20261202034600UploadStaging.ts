import { Migration } from '@mikro-orm/migrations';

/**
 * NDJSON uploads no longer run inside one transaction held open while the
 * client sends its body: validated lines are staged in short autocommit
 * batches, then moved into dataset_items in one short transaction that also
 * creates the version. Staging is unlogged (a crash loses an unfinished upload
 * anyway) and each upload's rows hang off its dataset_uploads row, so deleting
 * that row (on error, or by the sweep of stale uploads) deletes them.
 *
 * dataset_items.size_bytes (the item's JSON text, measured at insert) lets a
 * list cut its page by bytes without reading the items' TOAST; rows written
 * before it is set are measured when listed.
 */
export class Migration20261202034600UploadStaging extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "dataset_items" add column "size_bytes" int null;`);
    this.addSql(`create unlogged table "dataset_uploads" ("id" uuid not null, "tenant_id" uuid not null, "dataset_id" uuid not null, "started_at" timestamptz not null default now(), "touched_at" timestamptz not null default now(), constraint "dataset_uploads_pkey" primary key ("id"));`);
    this.addSql(`create index "dataset_uploads_touched_at_idx" on "dataset_uploads" ("touched_at");`);
    this.addSql(`create unlogged table "dataset_upload_items" ("upload_id" uuid not null, "seq" int not null, "id" uuid not null, "input" jsonb not null, "expected_output" jsonb null, "output" jsonb null, "metadata" jsonb null, "size_bytes" int not null, constraint "dataset_upload_items_pkey" primary key ("upload_id", "seq"), constraint "dataset_upload_items_upload_id_foreign" foreign key ("upload_id") references "dataset_uploads" ("id") on delete cascade);`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "dataset_upload_items";`);
    this.addSql(`drop table if exists "dataset_uploads";`);
    this.addSql(`alter table "dataset_items" drop column if exists "size_bytes";`);
  }

}
