import { Migration } from '@mikro-orm/migrations';

/**
 * Several criteria per eval version: each result keeps every criterion's
 * outcome (`scores`), and each run its per-criterion counters
 * (`criteria_stats`), moved by the same statements that move its counters.
 * Both are null for one evaluator, so existing runs and results are as before.
 */
export class Migration20261204190000Criteria extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "eval_runs" add column "criteria_stats" jsonb null;`);
    this.addSql(`alter table "eval_run_items" add column "scores" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "eval_run_items" drop column if exists "scores";`);
    this.addSql(`alter table "eval_runs" drop column if exists "criteria_stats";`);
  }

}
