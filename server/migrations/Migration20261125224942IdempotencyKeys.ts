import { Migration } from '@mikro-orm/migrations';

export class Migration20261125224942IdempotencyKeys extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "idempotency_keys" ("tenant_id" uuid not null, "key" text not null, "request_hash" text not null, "status" text check ("status" in ('in_flight', 'done')) not null, "run_id" uuid null, "response" jsonb null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "expires_at" timestamptz not null, constraint "idempotency_keys_pkey" primary key ("tenant_id", "key"));`);
    this.addSql(`create index "idempotency_keys_expires_at_index" on "idempotency_keys" ("expires_at");`);

    this.addSql(`alter table "idempotency_keys" add constraint "idempotency_keys_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`create index "eval_runs_tenant_active_idx" on "eval_runs" ("tenant_id") where "status" in ('pending', 'running');`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "idempotency_keys" cascade;`);

    this.addSql(`drop index "eval_runs_tenant_active_idx";`);
  }

}
