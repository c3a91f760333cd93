import { Migration } from '@mikro-orm/migrations';

export class Migration20261125225356Webhooks extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "webhooks" ("id" uuid not null, "tenant_id" uuid not null, "url" text not null, "secret" text not null, "created_at" timestamptz not null, constraint "webhooks_pkey" primary key ("id"));`);
    this.addSql(`create index "webhooks_tenant_id_idx" on "webhooks" ("tenant_id", "id");`);

    this.addSql(`create table "webhook_deliveries" ("id" uuid not null, "tenant_id" uuid not null, "webhook_id" uuid not null, "run_id" uuid not null, "event_type" text check ("event_type" in ('eval_run.completed', 'eval_run.failed')) not null, "run_ended_at" timestamptz not null, "attempt" int not null, "status_code" int null, "error" text null, "duration_ms" int not null, "delivered_at" timestamptz not null, constraint "webhook_deliveries_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_deliveries_event_idx" on "webhook_deliveries" ("webhook_id", "run_id", "run_ended_at");`);

    this.addSql(`alter table "webhooks" add constraint "webhooks_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_tenant_id_foreign" foreign key ("tenant_id") references "tenants" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_webhook_id_foreign" foreign key ("webhook_id") references "webhooks" ("id") on update cascade on delete cascade;`);
    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_run_id_foreign" foreign key ("run_id") references "eval_runs" ("id") on update cascade on delete cascade;`);

    this.addSql(`alter table "eval_runs" add column "notified_at" timestamptz null;`);
    // Runs that ended before webhooks existed owe nobody an event: without this the first sweep would walk them all.
    this.addSql(`update "eval_runs" set "notified_at" = coalesce("completed_at", now()) where "status" in ('completed', 'failed');`);
    this.addSql(`create index "eval_runs_unnotified_idx" on "eval_runs" ("completed_at") where "notified_at" is null and "status" in ('completed', 'failed');`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_deliveries" drop constraint "webhook_deliveries_webhook_id_foreign";`);

    this.addSql(`drop table if exists "webhooks" cascade;`);

    this.addSql(`drop table if exists "webhook_deliveries" cascade;`);

    this.addSql(`drop index "eval_runs_unnotified_idx";`);
    this.addSql(`alter table "eval_runs" drop column "notified_at";`);
  }

}
