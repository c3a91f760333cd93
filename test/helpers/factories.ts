/** Factories over the real services: tenants, keys, datasets, evals, random names. */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Role } from '../../entities/index.ts';
import { evaluatorSpecSchema } from '../../domain/evaluators/evaluator.schema.ts';
import { addDatasetItems, createDataset, type NewItem } from '../../domain/datasets/dataset.service.ts';
import { createEval } from '../../domain/evals/eval.service.ts';
import { createApiKey, createTenant } from '../../domain/tenants/tenant.service.ts';
import type { Container } from '../../server/container.ts';
import { sql } from '../../domain/shared/sql.ts';

export interface TenantFixture {
  id: string;
  keys: Record<Role, string>;
  keyIds: Record<Role, string>;
}

export async function makeTenant(c: Container, name = 'tenant', externalOrgId?: string): Promise<TenantFixture> {
  const em = c.orm.em.fork();
  const t = await createTenant(em, { name, externalOrgId });
  const keys = {} as Record<Role, string>;
  const keyIds = {} as Record<Role, string>;
  for (const role of ['owner', 'member', 'viewer'] as const) {
    const k = await createApiKey(em, { tenantId: t.id, role });
    keys[role] = k.key;
    keyIds[role] = k.id;
  }
  return { id: t.id, keys, keyIds };
}

/** `n` items; item i passes exact_match when `passes(i)`. */
export function items(n: number, passes: (i: number) => boolean = () => true): NewItem[] {
  return Array.from({ length: n }, (_, i) => ({
    input: `question ${i}`,
    expected_output: `answer ${i}`,
    output: passes(i) ? `answer ${i}` : `wrong ${i}`,
    metadata: { i },
  }));
}

export async function makeDataset(c: Container, tenantId: string, data: NewItem[] = items(10)) {
  const em = c.orm.em.fork();
  const { dataset } = await createDataset(em, tenantId, { name: 'ds' });
  let version = null;
  for (let i = 0; i < data.length; i += 5_000) {
    version = await addDatasetItems(em, tenantId, dataset.id, data.slice(i, i + 5_000));
  }
  return { datasetId: dataset.id, versionId: version?.id ?? null };
}

export async function makeEval(c: Container, tenantId: string, evaluator: unknown = { type: 'exact_match' }) {
  const em = c.orm.em.fork();
  const created = await createEval(em, tenantId, { name: 'ev', evaluator: evaluatorSpecSchema.parse(evaluator) });
  return { evalId: created.eval.id, evalVersionId: created.version.id };
}

/** The invariant every test checks: counters equal count(results), per status. */
export async function assertCountersExact(em: EntityManager, runId: string) {
  const [row] = await sql<{
    completed_count: number;
    passed_count: number;
    failed_count: number;
    error_count: number;
    score_sum: number;
    n: number;
    p: number;
    f: number;
    e: number;
    s: number;
  }>(
    em,
    `select r.completed_count, r.passed_count, r.failed_count, r.error_count, r.score_sum,
            (select count(*)::int from eval_run_items i where i.run_id = r.id) as n,
            (select count(*)::int from eval_run_items i where i.run_id = r.id and i.status = 'passed') as p,
            (select count(*)::int from eval_run_items i where i.run_id = r.id and i.status = 'failed') as f,
            (select count(*)::int from eval_run_items i where i.run_id = r.id and i.status = 'error') as e,
            (select coalesce(sum(score), 0) from eval_run_items i where i.run_id = r.id and i.status <> 'error') as s
       from eval_runs r where r.id = ?`,
    [runId],
  );
  if (!row) throw new Error(`run ${runId} not found`);
  const ok =
    row.completed_count === row.n &&
    row.passed_count === row.p &&
    row.failed_count === row.f &&
    row.error_count === row.e &&
    Math.abs(Number(row.score_sum) - Number(row.s)) < 1e-6;
  if (!ok) throw new Error(`counters drifted from results: ${JSON.stringify(row)}`);
  return row;
}

/**
 * The per-criterion invariant, computed apart from the SQL that keeps it: for
 * every criterion of the run, its counters equal what the stored results say
 * (a result without that criterion's outcome counts as its error), and
 * passed + failed + error = completed_count.
 */
export async function assertCriteriaCountersExact(em: EntityManager, runId: string) {
  const [run] = await sql<{ completed_count: number; criteria_stats: { name: string; passed_count: number; failed_count: number; error_count: number; score_sum: number }[] | null }>(
    em,
    'select completed_count, criteria_stats from eval_runs where id = ?',
    [runId],
  );
  if (!run?.criteria_stats) throw new Error(`run ${runId} has no criteria`);
  const results = await sql<{ scores: { name: string; status: string; score: number | null }[] | null }>(em, 'select scores from eval_run_items where run_id = ?', [runId]);
  for (const c of run.criteria_stats) {
    const want = { passed_count: 0, failed_count: 0, error_count: 0, score_sum: 0 };
    for (const r of results) {
      const mine = r.scores?.find((x) => x.name === c.name);
      if (mine?.status === 'passed') want.passed_count += 1;
      else if (mine?.status === 'failed') want.failed_count += 1;
      else want.error_count += 1;
      if (mine && mine.status !== 'error') want.score_sum += mine.score ?? 0;
    }
    const ok =
      c.passed_count === want.passed_count &&
      c.failed_count === want.failed_count &&
      c.error_count === want.error_count &&
      Math.abs(Number(c.score_sum) - want.score_sum) < 1e-6 &&
      c.passed_count + c.failed_count + c.error_count === run.completed_count;
    if (!ok) throw new Error(`criterion ${c.name} drifted from results: ${JSON.stringify({ stored: c, want, completed: run.completed_count })}`);
  }
  return run.criteria_stats;
}
