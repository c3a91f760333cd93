/**
 * The SQL of the results' monthly partitions (migration
 * Migration20261206020000PartitionedResults): eval_run_items and
 * eval_run_samples are partitioned by range of run_id, a calendar month (UTC)
 * of UUIDv7 run ids per partition, named `<table>_pYYYY_MM`.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from '../shared/sql.ts';

export const PARTITIONED_RESULT_TABLES = ['eval_run_items', 'eval_run_samples'] as const;
export type PartitionedResultTable = (typeof PARTITIONED_RESULT_TABLES)[number];

/** A monthly partition's name → its table, and the month's first instant (UTC, ms); undefined for another name. */
export function parsePartitionName(name: string): { table: PartitionedResultTable; monthStart: number; monthEnd: number } | undefined {
  const m = /^(eval_run_items|eval_run_samples)_p(\d{4})_(\d{2})$/.exec(name);
  if (!m) return undefined;
  const year = Number(m[2]);
  const month = Number(m[3]) - 1;
  if (month < 0 || month > 11) return undefined;
  return { table: m[1] as PartitionedResultTable, monthStart: Date.UTC(year, month, 1), monthEnd: Date.UTC(year, month + 1, 1) };
}

/** The smallest UUIDv7 of the millisecond `ms` (what the partition bounds are made of; evalgate_uuidv7_floor in SQL). */
export function uuidv7Floor(ms: number): string {
  const hex = Math.floor(ms).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`;
}

/**
 * Creates the monthly partitions still missing, of both tables, for the months
 * from `fromMs`'s to `toMs`'s (evalgate_ensure_result_partitions: an ATTACH
 * each, under one advisory lock); answers how many it created. `lock_timeout`
 * bounds the wait for the parent's SHARE UPDATE EXCLUSIVE lock (a concurrent
 * detach holds it); the next sweep tries again.
 */
export async function ensurePartitions(em: EntityManager, fromMs: number, toMs: number, lockTimeoutMs: number): Promise<number> {
  return em.transactional(async (tx) => {
    await sql(tx, `select set_config('lock_timeout', ?, true)`, [`${Math.trunc(lockTimeoutMs)}ms`]);
    const [row] = await sql<{ n: number }>(tx, 'select evalgate_ensure_result_partitions(to_timestamp(? / 1000.0), to_timestamp(? / 1000.0)) as n', [fromMs, toMs]);
    return row?.n ?? 0;
  });
}

export interface PartitionRow {
  name: string;
  /** the partitioned table it is (or was) a partition of; null: a table of that name no longer attached (a detach whose drop did not happen) */
  parent: string | null;
  /** a DETACH … CONCURRENTLY that stopped half-way (its FINALIZE is still to run) */
  detach_pending: boolean;
}

/** Every monthly partition of the results' tables, attached or left detached by a drop that did not finish. */
export async function listPartitions(em: EntityManager): Promise<PartitionRow[]> {
  return sql<PartitionRow>(
    em,
    `select c.relname as name, p.relname as parent, coalesce(i.inhdetachpending, false) as detach_pending
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace and n.nspname = current_schema()
       left join pg_inherits i on i.inhrelid = c.oid
       left join pg_class p on p.oid = i.inhparent
      where c.relkind = 'r' and c.relname ~ '^eval_run_(items|samples)_p[0-9]{4}_[0-9]{2}$'
      order by c.relname`,
  );
}

/** Whether any run (of any status, of any tenant) has an id in [lo, hi): its results would be in that range's partition. */
export async function runsInRange(em: EntityManager, lo: string, hi: string): Promise<boolean> {
  const [row] = await sql<{ found: boolean }>(em, 'select exists (select 1 from eval_runs where id >= ?::uuid and id < ?::uuid) as found', [lo, hi]);
  return row?.found ?? false;
}

/** Names are interpolated into DDL: only a name parsePartitionName accepts (letters, digits, underscores) may come here. */
function ident(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a partition name: ${name}`);
  return `"${name}"`;
}

/**
 * Detaches the partition without blocking the parent (DETACH … CONCURRENTLY:
 * SHARE UPDATE EXCLUSIVE on the parent, so inserts and reads of every other
 * month go on; it waits for the transactions that may still see the partition,
 * under the statement timeout). Outside any transaction (PostgreSQL refuses
 * it in one). A detach that stops half-way leaves the partition "detach
 * pending": finalizeDetach ends it.
 */
export async function detachConcurrently(em: EntityManager, parent: string, name: string): Promise<void> {
  await sql(em, `alter table ${ident(parent)} detach partition ${ident(name)} concurrently`);
}

export async function finalizeDetach(em: EntityManager, parent: string, name: string): Promise<void> {
  await sql(em, `alter table ${ident(parent)} detach partition ${ident(name)} finalize`);
}

/** Drops a detached partition (its own ACCESS EXCLUSIVE lock only: nothing reads it any more). */
export async function dropDetached(em: EntityManager, name: string): Promise<void> {
  await sql(em, `drop table if exists ${ident(name)}`);
}
