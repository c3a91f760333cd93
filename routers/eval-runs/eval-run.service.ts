/**
 * eval-runs domain operations shared by the router and the jobs. Hot paths
 * use one SQL statement each instead of the unit of work.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { jobIds, QUEUE_NAMES } from '../../jobs/queues.ts';
import type { Container } from '../../server/container.ts';
import { notFound } from '../../server/errors.ts';
import { EVAL_RUN_COLUMNS, type EvalRunRow } from './eval-run.mapper.ts';

/**
 * Inserts a `pending` run pinned to the dataset's latest version, in one
 * statement (so one transaction). Throws NOT_FOUND naming what is missing.
 */
export async function insertPendingRun(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  evalVersionId: string,
): Promise<EvalRunRow> {
  const runId = uuidv7();
  const rows = await em.getConnection().execute<EvalRunRow[]>(
    `with ds as (
       select d.id as dataset_id, v.id as version_id, v.item_count
         from datasets d
         join dataset_versions v on v.dataset_id = d.id and v.version = d.latest_version
        where d.id = ? and d.tenant_id = ?
     ), ev as (
       select id from eval_versions where id = ? and tenant_id = ?
     )
     insert into eval_runs (id, tenant_id, dataset_id, dataset_version_id, eval_version_id, status, item_count,
                            completed_count, passed_count, failed_count, error_count, score_sum, created_at, updated_at)
     select ?, ?, ds.dataset_id, ds.version_id, ev.id, 'pending', ds.item_count, 0, 0, 0, 0, 0, now(), now()
       from ds, ev
     returning ${EVAL_RUN_COLUMNS}`,
    [datasetId, tenantId, evalVersionId, tenantId, runId, tenantId],
  );
  const run = rows[0];
  if (run) return run;
  const found = await em
    .getConnection()
    .execute<{ ds: boolean }[]>('select exists(select 1 from datasets where id = ? and tenant_id = ?) as ds', [datasetId, tenantId]);
  if (!found[0]?.ds) throw notFound('dataset', datasetId);
  throw notFound('eval version', evalVersionId);
}

export async function findRun(em: EntityManager, tenantId: string, runId: string): Promise<EvalRunRow> {
  const rows = await em
    .getConnection()
    .execute<EvalRunRow[]>(`select ${EVAL_RUN_COLUMNS} from eval_runs where id = ? and tenant_id = ?`, [runId, tenantId]);
  const run = rows[0];
  if (!run) throw notFound('eval run', runId);
  return run;
}

/** Rejects after `ms` so that a dead Redis cannot hold a request. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Enqueues the run's start job (job id = run id). Never throws: when Redis is
 * away the run stays `pending` in Postgres and the reconciler enqueues it.
 */
export async function enqueueRunStart(c: Container, runId: string): Promise<boolean> {
  try {
    await withTimeout(
      c.queues.runStart.add(QUEUE_NAMES.runStart, { run_id: runId }, { ...c.jobOptions.runStart, jobId: jobIds.runStart(runId) }),
      2_000,
      'enqueue',
    );
    return true;
  } catch (err) {
    c.log.warn({ runId, err: (err as Error).message }, 'could not enqueue run start; the reconciler will');
    return false;
  }
}
