import { Migration } from '@mikro-orm/migrations';

export class Migration20261125214757 extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "tenants" ("id" uuid not null, "name" text not null, "external_org_id" text null, "created_at" timestamptz not null, constraint "tenants_pkey" primary key ("id"));`);
    this.addSql(`alter table "tenants" add constraint "tenants_external_org_id_unique" unique ("external_org_id");`);

    this.addSql(`create table "evals" ("id" uuid not null, "tenant_id" uuid not null, "name" text not null, "latest_version" int not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "evals_pkey" primary key ("id"));`);
    this.addSql(`create index "evals_tenant_id_created_at_index" on "evals" ("tenant_id", "created_at");`);

    this.addSql(`create table "eval_versions" ("id" uuid not null, "tenant_id" uuid not null, "eval_id" uuid not null, "version" int not null, "evaluator" jsonb not null, "created_at" timestamptz not null, constraint "eval_versions_pkey" primary key ("id"));`);
    this.addSql(`alter table "eval_versions" add constraint "eval_versions_eval_id_version_unique" unique ("eval_id", "version");`);

    this.addSql(`create table "datasets" ("id" uuid not null, "tenant_id" uuid not null, "name" text not null, "description" text null, "latest_version" int not null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "datasets_pkey" primary key ("id"));`);
    this.addSql(`create index "datasets_tenant_id_created_at_index" on "datasets" ("tenant_id", "created_at");`);

    this.addSql(`create table "dataset_versions" ("id" uuid not null, "tenant_id" uuid not null, "dataset_id" uuid not null, "version" int not null, "item_count" int not null, "created_at" timestamptz not null, constraint "dataset_versions_pkey" primary key ("id"));`);
    this.addSql(`alter table "dataset_versions" add constraint "dataset_versions_dataset_id_version_unique" unique ("dataset_id", "version");`);

    this.addSql(`create table "eval_runs" ("id" uuid not null, "tenant_id" uuid not null, "dataset_id" uuid not null, "dataset_version_id" uuid not null, "eval_version_id" uuid not null, "status" text check ("status" in ('pending', 'running', 'completed', 'failed')) not null, "item_count" int not null, "completed_count" int not null default 0, "passed_count" int not null default 0, "failed_count" int not null default 0, "error_count" int not null default 0, "score_sum" double precision not null default 0, "started_at" timestamptz null, "completed_at" timestamptz null, "error_message" text null, "created_at" timestamptz not null, "updated_at" timestamptz not null, constraint "eval_runs_pkey" primary key ("id"));`);
    this.addSql(`create index "eval_runs_dataset_created_idx" on "eval_runs" ("dataset_id", "created_at", "id");`);
    this.addSql(`create index "eval_runs_status_idx" on "eval_runs" ("status");`);

    this.addSql(`create table "eval_run_chunks" ("run_id" uuid not null, "chunk_index" int not null, "first_item_id" uuid not null, "last_item_id" uuid not null, "item_count" int not null, "done_at" timestamptz null, constraint "eval_run_chunks_pkey" primary key ("run_id", "chunk_index"));`);

    this.addSql(`create table "dataset_items" ("id" uuid not null, "tenant_id" uuid not null, "dataset_id" uuid not null, "valid_from" int not null, "valid_to" int null, "input" jsonb not null, "expected_output" jsonb null, "output" jsonb null, "metadata" jsonb null, "created_at" timestamptz not null, constraint "dataset_items_pkey" primary key ("id"));`);
    this.addSql(`create index "dataset_items_keyset_idx" on "dataset_items" ("dataset_id", "id", "valid_from", "valid_to");`);

    this.addSql(`create table "eval_run_items" ("run_id" uuid not null, "item_id" uuid not null, "tenant_id" uuid not null, "status" text check ("status" in ('passed', 'failed', 'error')) not null, "score" double precision null, "passed" boolean null, "reason" text null, "error" text null, "attempts" int not null, "latency_ms" int not null, "created_at" timestamptz not null, constraint "eval_run_items_pkey" primary key ("run_id", "item_id"));`);

    this.addSql(`create table "api_keys" ("id" uuid not null, "tenant_id" uuid not null, "name" text null, "role" text check ("role" in ('owner', 'member', 'viewer')) not null, "key_hash" text not null, "key_prefix" text not null, "created_at" timestamptz not null, "revoked_at" timestamptz null, constraint "api_keys_pkey" primary key ("id"));`);
    this.addSql(`create index "api_keys_tenant_id_index" on "api_keys" ("tenant_id");`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_key_hash_unique" unique ("key_hash");`);

    this.addSql(`alter table "evals" add constraint "evals_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "eval_versions" add constraint "eval_versions_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_versions" add constraint "eval_versions_eval_id_foreign" foreign key ("eval_id") references "evals" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "datasets" add constraint "datasets_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "dataset_versions" add constraint "dataset_versions_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "dataset_versions" add constraint "dataset_versions_dataset_id_foreign" foreign key ("dataset_id") references "datasets" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "eval_runs" add constraint "eval_runs_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_runs" add constraint "eval_runs_dataset_id_foreign" foreign key ("dataset_id") references "datasets" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_runs" add constraint "eval_runs_dataset_version_id_foreign" foreign key ("dataset_version_id") references "dataset_versions" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_runs" add constraint "eval_runs_eval_version_id_foreign" foreign key ("eval_version_id") references "eval_versions" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "eval_run_chunks" add constraint "eval_run_chunks_run_id_foreign" foreign key ("run_id") references "eval_runs" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "dataset_items" add constraint "dataset_items_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "dataset_items" add constraint "dataset_items_dataset_id_foreign" foreign key ("dataset_id") references "datasets" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "eval_run_items" add constraint "eval_run_items_run_id_foreign" foreign key ("run_id") references "eval_runs" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_run_items" add constraint "eval_run_items_item_id_foreign" foreign key ("item_id") references "dataset_items" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "eval_run_items" add constraint "eval_run_items_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "api_keys" add constraint "api_keys_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
  }

}
