import { Migration } from '@mikro-orm/migrations';

export class Migration20261125224131JudgeUsage extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "eval_runs" add column "prompt_tokens" bigint not null default 0, add column "completion_tokens" bigint not null default 0, add column "cost_usd" double precision null;`);

    this.addSql(`alter table "eval_run_items" add column "prompt_tokens" int null, add column "completion_tokens" int null, add column "cost_usd" double precision null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "eval_run_items" drop column "prompt_tokens", drop column "completion_tokens", drop column "cost_usd";`);

    this.addSql(`alter table "eval_runs" drop column "prompt_tokens", drop column "completion_tokens", drop column "cost_usd";`);
  }

}
