import { Migration } from '@mikro-orm/migrations';

/**
 * Repetitions: a run may generate (or read) and score each item n times.
 * The item keeps one result (its primary key stays (run_id, item_id), so an
 * item is still recorded exactly once) carrying each repetition's outcome
 * (`repetitions`, null for n = 1), how many passed and the spread of their
 * scores; each repetition's sample is its own row of eval_run_samples, keyed
 * (run, item, repetition) as before. The run keeps the sums its per-run
 * statistics need, moved by the statement that records the results.
 */
export class Migration20261204200000Repetitions extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "eval_runs"
      add column "repetitions" int not null default 1,
      add column "repetition_min_passed" int null,
      add column "passed_samples" bigint not null default 0,
      add column "all_passed_count" int not null default 0,
      add column "score_sd_sum" double precision not null default 0;`);
    this.addSql(`alter table "eval_run_items"
      add column "repetitions" jsonb null,
      add column "passed_repetitions" int null,
      add column "score_sd" double precision null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "eval_run_items" drop column if exists "score_sd", drop column if exists "passed_repetitions", drop column if exists "repetitions";`);
    this.addSql(`alter table "eval_runs" drop column if exists "score_sd_sum", drop column if exists "all_passed_count", drop column if exists "passed_samples",
      drop column if exists "repetition_min_passed", drop column if exists "repetitions";`);
  }

}
