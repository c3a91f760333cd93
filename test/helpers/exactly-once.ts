/**
 * The invariant every run that processes crashed, stopped or flushed under must
 * still end with (fault suite, worker e2e tests; RELIABILITY.md).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { expect } from 'vitest';
import { sql } from '../../domain/shared/sql.ts';
import { assertCountersExact } from './factories.ts';

/**
 * The run is `completed` with `itemCount` items pinned, each item has exactly
 * one result (count = count(distinct item) = item_count), the counters equal
 * the results per status, and no chunk is left undone. Returns how many items
 * were lost and how many were scored twice (both 0 when it passes).
 */
export async function assertExactlyOnce(em: EntityManager, runId: string, itemCount: number): Promise<{ lost: number; duplicates: number }> {
  const [run] = await sql<{ status: string; item_count: number }>(em, 'select status, item_count from eval_runs where id = ?', [runId]);
  expect(run, `run ${runId}`).toBeDefined();
  expect(run?.status).toBe('completed');
  expect(run?.item_count).toBe(itemCount);
  await assertCountersExact(em, runId);
  const [row] = await sql<{ results: number; distinct_items: number; pinned: number }>(
    em,
    `select count(*)::int as results, count(distinct i.item_id)::int as distinct_items,
            (select item_count from eval_runs where id = ?) as pinned
       from eval_run_items i where i.run_id = ?`,
    [runId, runId],
  );
  expect(row).toEqual({ results: itemCount, distinct_items: itemCount, pinned: itemCount });
  const [chunks] = await sql<{ undone: number }>(em, 'select count(*)::int as undone from eval_run_chunks where run_id = ? and done_at is null', [runId]);
  expect(chunks?.undone).toBe(0);
  return { lost: itemCount - (row?.distinct_items ?? 0), duplicates: (row?.results ?? 0) - (row?.distinct_items ?? 0) };
}
