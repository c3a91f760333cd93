/** What the background deletion of runs and datasets still has to do (the `deletions` table), for tests. */
import { sql } from '../../domain/shared/sql.ts';
import type { Stack } from './stack.ts';

/** Deletions not finished yet (their `deletions` row is left). */
export async function deletionsLeft(s: Pick<Stack, 'container'>): Promise<number> {
  const [row] = await sql<{ n: number }>(s.container.orm.em.fork(), 'select count(*)::int as n from deletions');
  return row?.n ?? 0;
}

/** Rows of these runs in each table that hangs off a run. */
export async function runRows(s: Pick<Stack, 'container'>, runIds: readonly string[]): Promise<{ runs: number; results: number; samples: number; chunks: number }> {
  const ids = JSON.stringify(runIds);
  const [row] = await sql<{ runs: number; results: number; samples: number; chunks: number }>(
    s.container.orm.em.fork(),
    `with ids as (select (jsonb_array_elements_text(?::jsonb))::uuid as id)
     select (select count(*)::int from eval_runs where id in (select id from ids)) as runs,
            (select count(*)::int from eval_run_items where run_id in (select id from ids)) as results,
            (select count(*)::int from eval_run_samples where run_id in (select id from ids)) as samples,
            (select count(*)::int from eval_run_chunks where run_id in (select id from ids)) as chunks`,
    [ids],
  );
  return row ?? { runs: 0, results: 0, samples: 0, chunks: 0 };
}
