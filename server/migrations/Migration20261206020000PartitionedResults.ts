import { Migration } from '@mikro-orm/migrations';

/**
 * Results partitioned by month of their run (issue #16): eval_run_items and
 * eval_run_samples become `partition by range (run_id)`. Run ids are UUIDv7,
 * whose first 48 bits are the run's creation time in milliseconds, so a
 * calendar month of runs is one contiguous range of ids: the partition
 * `eval_run_items_p2026_12` holds the results of the runs created in
 * December 2026 (UTC), from `evalgate_uuidv7_floor('2026-12-01')` to
 * `evalgate_uuidv7_floor('2027-01-01')`. Why range on the id and not a hash
 * of it (both measured, BENCHMARKS.md "Partitioning"): every statement on
 * these tables names one run, so both prune to one partition; only a range
 * lets retention drop a month of results whole (no batched deletes, no
 * vacuum of dead rows) once every run of that month is gone, and a month's
 * partition stops receiving rows once its runs end, so autovacuum leaves it
 * alone.
 *
 * - `evalgate_uuidv7_floor(t)`: the smallest UUIDv7 of the millisecond t.
 * - `evalgate_ensure_result_partitions(from, to)`: creates the months' partitions
 *   still missing (both tables), each created empty and then ATTACHed (SHARE
 *   UPDATE EXCLUSIVE on the parent: inserts and reads go on; CREATE TABLE …
 *   PARTITION OF would take ACCESS EXCLUSIVE), under one advisory lock so two
 *   processes do not race. SECURITY DEFINER: the role in DATABASE_URL may be
 *   another than the one that runs the migrations, and a missing partition
 *   refuses every insert of its month's runs. The processes keep three months
 *   ahead (domain/eval-runs/result-partitions.service.ts): at start-up and on
 *   every reconcile sweep.
 * - No DEFAULT partition: DETACH PARTITION … CONCURRENTLY (what retention
 *   uses to drop a month without blocking the parent) refuses a table that
 *   has one. Ids before the first month (rows this migration finds with older
 *   or non-time ids) go to `<table>_p_before`, from MINVALUE.
 * - Autovacuum settings per partition (a partitioned parent takes none).
 * - Existing rows are copied into the new tables in this migration's
 *   transaction (minutes per hundred million rows: plan it for a deployment
 *   with many results).
 */
export class Migration20261206020000PartitionedResults extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create function "evalgate_uuidv7_floor"(t timestamptz) returns uuid language sql immutable strict parallel safe as $$
  select (lpad(to_hex(floor(extract(epoch from t) * 1000)::bigint), 12, '0') || '00000000000000000000')::uuid
$$;`);
    this.addSql(`create function "evalgate_ensure_result_partitions"(from_month timestamptz, to_month timestamptz) returns int
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  m timestamptz := date_trunc('month', from_month at time zone 'UTC') at time zone 'UTC';
  t text;
  p text;
  n int := 0;
begin
  perform pg_advisory_xact_lock(hashtextextended('evalgate_result_partitions', 0));
  while m <= to_month loop
    foreach t in array array['eval_run_items', 'eval_run_samples'] loop
      p := t || '_p' || to_char(m at time zone 'UTC', 'YYYY_MM');
      if to_regclass(p) is null then
        execute format('create table %I (like %I including defaults including constraints) with (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01)', p, t);
        execute format('alter table %I attach partition %I for values from (%L) to (%L)', t, p, evalgate_uuidv7_floor(m), evalgate_uuidv7_floor(m + interval '1 month'));
        n := n + 1;
      end if;
    end loop;
    m := m + interval '1 month';
  end loop;
  return n;
end
$$;`);
    for (const t of ['eval_run_items', 'eval_run_samples']) {
      this.addSql(`alter table "${t}" rename to "${t}_unpartitioned";`);
      this.addSql(`alter table "${t}_unpartitioned" rename constraint "${t}_pkey" to "${t}_unpartitioned_pkey";`);
      this.addSql(`create table "${t}" (like "${t}_unpartitioned" including defaults including constraints) partition by range ("run_id");`);
    }
    this.addSql(`alter index "eval_run_items_status_idx" rename to "eval_run_items_unpartitioned_status_idx";`);
    this.addSql(`alter table "eval_run_items" add constraint "eval_run_items_pkey" primary key ("run_id", "item_id");`);
    this.addSql(`create index "eval_run_items_status_idx" on "eval_run_items" ("run_id", "status", "item_id");`);
    this.addSql(`alter table "eval_run_samples" add constraint "eval_run_samples_pkey" primary key ("run_id", "item_id", "repetition");`);
    // the months from the oldest row's (not before 2020) to three months ahead; older ids in _p_before
    this.addSql(`do $$
declare
  ids uuid[] := array(select x from (
      (select run_id as x from eval_run_items_unpartitioned order by run_id limit 1)
      union all (select run_id from eval_run_items_unpartitioned order by run_id desc limit 1)
      union all (select run_id from eval_run_samples_unpartitioned order by run_id limit 1)
      union all (select run_id from eval_run_samples_unpartitioned order by run_id desc limit 1)) y);
  times timestamptz[] := array(select to_timestamp(('x' || substr(replace(i::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0) from unnest(ids) i);
  first timestamptz := greatest(timestamptz '2020-01-01', least(now(), coalesce((select min(t) from unnest(times) t), now())));
  last timestamptz := greatest(now() + interval '3 months', least(now() + interval '5 years', coalesce((select max(t) from unnest(times) t), now())));
  lo uuid := evalgate_uuidv7_floor(date_trunc('month', first at time zone 'UTC') at time zone 'UTC');
begin
  execute format('create table eval_run_items_p_before partition of eval_run_items for values from (minvalue) to (%L)', lo);
  execute format('create table eval_run_samples_p_before partition of eval_run_samples for values from (minvalue) to (%L)', lo);
  perform evalgate_ensure_result_partitions(first, last);
end
$$;`);
    this.addSql(`insert into "eval_run_items" select * from "eval_run_items_unpartitioned";`);
    this.addSql(`insert into "eval_run_samples" select * from "eval_run_samples_unpartitioned";`);
    this.addSql(`drop table "eval_run_items_unpartitioned";`);
    this.addSql(`drop table "eval_run_samples_unpartitioned";`);
  }

  override async down(): Promise<void> {
    for (const t of ['eval_run_items', 'eval_run_samples']) {
      this.addSql(`create table "${t}_flat" (like "${t}" including defaults including constraints);`);
      this.addSql(`insert into "${t}_flat" select * from "${t}";`);
      this.addSql(`drop table "${t}";`);
      this.addSql(`alter table "${t}_flat" rename to "${t}";`);
      this.addSql(`alter table "${t}" set (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01);`);
    }
    this.addSql(`alter table "eval_run_items" add constraint "eval_run_items_pkey" primary key ("run_id", "item_id");`);
    this.addSql(`create index "eval_run_items_status_idx" on "eval_run_items" ("run_id", "status", "item_id");`);
    this.addSql(`alter table "eval_run_samples" add constraint "eval_run_samples_pkey" primary key ("run_id", "item_id", "repetition");`);
    this.addSql(`drop function "evalgate_ensure_result_partitions"(timestamptz, timestamptz);`);
    this.addSql(`drop function "evalgate_uuidv7_floor"(timestamptz);`);
  }

}
