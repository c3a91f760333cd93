import { Migration } from '@mikro-orm/migrations';

/**
 * Targets: a run may generate each item's output (a chat-completions call,
 * the team's own HTTP application) or re-score another run's samples, under
 * an optional cost budget and with a per-tenant sample cache.
 *
 * - eval_runs gains the target (jsonb, null = the dataset's stored output),
 *   the run whose samples it re-scores, whether it may use the cache, and its
 *   budget. All nullable or defaulted: existing runs are as before.
 * - eval_run_samples: one row per (run, item, repetition). Its `attempts` is
 *   counted before each provider call (status `pending`), so calls never
 *   exceed what is recorded even across crashes; the outcome (`done` or
 *   `error`) is written in the statement that inserts the item's result. No
 *   foreign key (like eval_run_items, on the hot path): the results trigger
 *   deletes a deleted run's samples too.
 * - sample_cache: a tenant's successful samples by content hash (target by
 *   name, rendered request, repetition). Errors are never stored.
 */
export class Migration20261203150000TargetsAndSamples extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "eval_runs"
      add column "target" jsonb null,
      add column "outputs_from_run_id" uuid null,
      add column "use_cache" boolean not null default true,
      add column "max_cost_usd" double precision null;`);
    this.addSql(`create table "eval_run_samples" (
      "run_id" uuid not null,
      "item_id" uuid not null,
      "repetition" int not null default 0,
      "tenant_id" uuid not null,
      "status" text not null check ("status" in ('pending', 'done', 'error')),
      "attempts" int not null default 0,
      "output_text" text null,
      "output" jsonb null,
      "raw_start" text null,
      "finish_reason" text null,
      "prompt_tokens" int null,
      "completion_tokens" int null,
      "cost_usd" double precision null,
      "latency_ms" int null,
      "cached" boolean not null default false,
      "error" text null,
      "created_at" timestamptz not null default now(),
      "updated_at" timestamptz not null default now(),
      constraint "eval_run_samples_pkey" primary key ("run_id", "item_id", "repetition"));`);
    this.addSql(`create table "sample_cache" (
      "tenant_id" uuid not null references "tenants" ("id") on update cascade on delete cascade,
      "key" text not null,
      "output_text" text not null,
      "output" jsonb null,
      "finish_reason" text null,
      "prompt_tokens" int null,
      "completion_tokens" int null,
      "created_at" timestamptz not null default now(),
      constraint "sample_cache_pkey" primary key ("tenant_id", "key"));`);
    this.addSql(`create or replace function "eval_runs_delete_results"() returns trigger language plpgsql as $$
begin
  delete from "eval_run_items" where "run_id" = any (array(select "id" from "deleted_runs"));
  delete from "eval_run_samples" where "run_id" = any (array(select "id" from "deleted_runs"));
  return null;
end
$$;`);
  }

  override async down(): Promise<void> {
    this.addSql(`create or replace function "eval_runs_delete_results"() returns trigger language plpgsql as $$
begin
  delete from "eval_run_items" where "run_id" = any (array(select "id" from "deleted_runs"));
  return null;
end
$$;`);
    this.addSql(`drop table if exists "sample_cache";`);
    this.addSql(`drop table if exists "eval_run_samples";`);
    this.addSql(`alter table "eval_runs" drop column if exists "max_cost_usd", drop column if exists "use_cache", drop column if exists "outputs_from_run_id", drop column if exists "target";`);
  }

}
