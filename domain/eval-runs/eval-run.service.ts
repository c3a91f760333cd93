/**
 * eval-runs' use cases, called by the router (scheduling, cancel, retry,
 * reads) and the run-start job (startEvalRun). The statements are in
 * eval-run.repository.ts; the steps of a run's life in run-lifecycle.ts.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';
import { isActiveRunStatus, type ItemStatus } from '../../entities/index.ts';
import { findDataset } from '../datasets/dataset.service.ts';
import { withDeadline } from '../shared/deadline.ts';
import type { Deps, Logger } from '../shared/deps.ts';
import { DomainError, notFound, RateLimitedError } from '../shared/errors.ts';
import { crashNow } from '../shared/faults.ts';
import { cutRows } from '../shared/pagination.ts';
import { compareRows, pairSummary, type CompareRow } from './compare.repository.ts';
import {
  findRunRow,
  insertPendingRunRow,
  listRunItemRows,
  listRunRows,
  type CriterionFilter,
  type EvalRunRow,
  type RunCaps,
  type RunItemRow,
  type RunLabel,
  type RunPlan,
} from './eval-run.repository.ts';
import { checkTarget } from '../targets/index.ts';
import { criteriaComparisons } from './compare-criteria.ts';
import { compareStatistics } from './compare-stats.ts';
import { toEvalRunDto } from './eval-run.mapper.ts';
import type { EvalRunDto, ScheduleEvalRunInput } from './eval-run.schema.ts';
import { onRunFinished } from './run-events.ts';
import { failRun, reopenForRetry, startRun } from './run-lifecycle.ts';
import { checkIdempotencyKey, idempotently } from './idempotency.service.ts';

export type { RunCaps, RunItemRow, RunLabel } from './eval-run.repository.ts';
export type { CompareRow } from './compare.repository.ts';

/** Who asks, for one request: its entity manager, its tenant, and its logger (whose lines carry the request id). */
export interface RequestScope {
  em: EntityManager;
  tenantId: string;
  log: Logger;
}

const INT_MAX = 2_147_483_647;
const NO_CAPS: RunCaps = { maxActiveRuns: INT_MAX, maxItemsPerRun: INT_MAX };
/** How long a request waits on Redis for an enqueue; the reconciler backs up whatever is left. */
const ENQUEUE_DEADLINE_MS = 2_000;

// ---------------------------------------------------------------- schedule

/**
 * Inserts a `pending` run pinned to the dataset's latest version, checking
 * the caps in the same statement. What it could not do it says with the
 * first that applies: NOT_FOUND naming what is missing, 422 for a dataset too
 * large for one run, 429 (with Retry-After) when the tenant already has
 * `maxActiveRuns` active. Concurrent requests each see the others' runs only
 * once committed, so a burst can overshoot the cap by the requests in flight.
 */
export async function insertPendingRun(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  evalVersionId: string,
  caps: RunCaps = NO_CAPS,
  label?: RunLabel,
  plan?: RunPlan,
): Promise<EvalRunRow> {
  const { ds_found, ev_found, active, items, ...run } = await insertPendingRunRow(em, uuidv7(), tenantId, datasetId, evalVersionId, caps, label, plan);
  if (run.id) return run as EvalRunRow;
  if (!ds_found) throw notFound('dataset', datasetId);
  if (!ev_found) throw notFound('eval version', evalVersionId);
  if (items !== null && items > caps.maxItemsPerRun) {
    throw new DomainError('UNPROCESSABLE_CONTENT', `the dataset's latest version has ${items} items, more than the ${caps.maxItemsPerRun} allowed in one run`);
  }
  throw new RateLimitedError(`this organization already has ${active} pending or running runs (the limit is ${caps.maxActiveRuns}); wait for one to finish`, 10);
}

/**
 * Enqueues the run's start job (job id = run id). Never throws: when Redis is
 * away the run stays `pending` in Postgres and the reconciler enqueues it.
 */
export async function enqueueRunStart(c: Deps, runId: string): Promise<boolean> {
  try {
    await withDeadline(c.producer.runStart(runId), ENQUEUE_DEADLINE_MS, 'enqueue');
    return true;
  } catch (err) {
    c.log.warn({ runId, err: (err as Error).message }, 'could not enqueue run start; the reconciler will');
    return false;
  }
}

/**
 * scheduleEvalRun: the run is committed before its start job is enqueued, so
 * a lost enqueue (Redis away, the process killed in between) loses no run:
 * the reconciler starts it. With an Idempotency-Key, a replay answers the
 * stored run and enqueues nothing.
 */
export async function scheduleEvalRun(deps: Deps, s: RequestScope, input: ScheduleEvalRunInput, idempotencyKey: string | undefined): Promise<EvalRunDto> {
  const caps: RunCaps = { maxActiveRuns: deps.env.MAX_ACTIVE_RUNS_PER_TENANT, maxItemsPerRun: deps.env.MAX_ITEMS_PER_RUN };
  const label: RunLabel = { name: input.name, metadata: input.metadata };
  const plan = await runPlan(deps, s, input);
  const create = async (em: EntityManager) => toEvalRunDto(await insertPendingRun(em, s.tenantId, input.id, input.eval_version_id, caps, label, plan));
  // What a key's replay must match: a request without a label or a plan hashes as it always has.
  const planned = input.target !== undefined || input.outputs_from_run !== undefined || input.cache !== undefined || input.max_cost_usd !== undefined;
  const repeated = input.repetitions !== undefined || input.repetition_pass !== undefined;
  const request = input.name === undefined && input.metadata === undefined && !planned && !repeated
    ? [input.id, input.eval_version_id]
    : [
        input.id, input.eval_version_id, input.name ?? null, input.metadata ?? null,
        ...(planned || repeated ? [input.target ?? null, input.outputs_from_run ?? null, input.cache ?? null, input.max_cost_usd ?? null] : []),
        ...(repeated ? [input.repetitions ?? 1, input.repetition_pass?.min_passed ?? null] : []),
      ];
  let run: EvalRunDto;
  if (idempotencyKey !== undefined) {
    const r = await idempotently(s.em, s.tenantId, checkIdempotencyKey(idempotencyKey), request, create);
    if (r.replayed) return r.result;
    run = r.result;
  } else {
    run = await create(s.em);
  }
  s.log.info({ runId: run.id, datasetId: run.dataset_id, items: run.item_count }, 'run scheduled');
  if (deps.faults.crashBeforeEnqueue) crashNow();
  await enqueueRunStart(deps, run.id);
  return run;
}

/**
 * How the run gets its outputs, checked before anything is written: a target
 * this deployment can run (400 otherwise), or a finished run of the same
 * dataset whose samples it re-scores (404, 400, 409 otherwise).
 */
async function runPlan(deps: Deps, s: RequestScope, input: ScheduleEvalRunInput): Promise<RunPlan> {
  const target = input.target && input.target.type !== 'dataset_output' ? input.target : null;
  const common = { cache: input.cache, maxCostUsd: input.max_cost_usd, repetitions: input.repetitions, repetitionMinPassed: input.repetition_pass?.min_passed };
  if (input.outputs_from_run === undefined) {
    if (target) checkTarget(deps.env, target);
    return { ...common, target };
  }
  const sourceId = input.outputs_from_run;
  if (target) throw new DomainError('BAD_REQUEST', 'invalid input: give a target or outputs_from_run, not both: a re-score scores the samples of that run');
  const source = await findRunRow(s.em, s.tenantId, sourceId);
  if (!source) throw notFound('eval run', sourceId);
  if (source.dataset_id !== input.id) throw new DomainError('BAD_REQUEST', `invalid input: outputs_from_run: eval run ${sourceId} is a run of another dataset`);
  if (isActiveRunStatus(source.status)) throw new DomainError('CONFLICT', `eval run ${sourceId} is still ${source.status}; re-score it once it has finished`);
  if (!source.target) {
    throw new DomainError('BAD_REQUEST', `invalid input: outputs_from_run: eval run ${sourceId} scored the items' stored outputs; it has no samples to re-score`);
  }
  if ((input.repetitions ?? 1) > source.repetitions) {
    throw new DomainError('BAD_REQUEST', `invalid input: repetitions: eval run ${sourceId} has ${source.repetitions} repetition(s) of each item; a re-score can score at most that many`);
  }
  // the re-score shows what produced the outputs it scores
  return { ...common, target: source.target, outputsFromRun: sourceId };
}

// ---------------------------------------------------------------- start (the run-start job)

/**
 * Moves the run to running, cuts its chunks and enqueues them; completes a
 * run over no items at once. Idempotent: a redelivered start re-enqueues the
 * same chunk ids. `started`: the run is running with its chunks (not ended,
 * missing, or completed empty); then its chunks and how many jobs were added.
 */
export async function startEvalRun(deps: Deps, runId: string): Promise<{ started: boolean; chunks: number; queued: number }> {
  const em = deps.orm.em.fork() as EntityManager;
  const { CHUNK_SIZE, JUDGE_CHUNK_SIZE } = deps.env;
  // a run that calls a provider per item (judging or generating) gets small chunks: slow items, spread over workers, recorded often
  const started = await startRun(em, runId, (type, generates) => (type === 'llm_judge' || generates ? JUDGE_CHUNK_SIZE : CHUNK_SIZE));
  if (started.completedEmpty) await onRunFinished(deps, runId);
  if (!started.run || started.completedEmpty) return { started: false, chunks: 0, queued: 0 };
  if (!isActiveRunStatus(started.run.status)) return { started: false, chunks: 0, queued: 0 };
  const queued = await deps.producer.undoneChunks(em, runId, { repair: false });
  return { started: true, chunks: started.chunks, queued };
}

// ---------------------------------------------------------------- cancel and retry

/** Ends a pending or running run `failed` with "canceled"; CONFLICT for a run that already ended. */
export async function cancelEvalRun(deps: Deps, s: RequestScope, runId: string): Promise<EvalRunDto> {
  const canceled = await failRun(s.em, runId, 'canceled', s.tenantId);
  if (canceled) {
    s.log.info({ runId }, 'run canceled');
    await onRunFinished(deps, canceled.id);
    return toEvalRunDto(canceled);
  }
  const run = await findRun(s.em, s.tenantId, runId);
  throw new DomainError('CONFLICT', `eval run ${runId} already ended (${run.status}); only pending or running runs can be canceled`);
}

/** Re-opens a finished run for its error (and never scored) items and enqueues their chunks. */
export async function retryEvalRun(deps: Deps, s: RequestScope, runId: string): Promise<EvalRunDto> {
  const { run, removed } = await reopenForRetry(s.em, s.tenantId, runId);
  s.log.info({ runId: run.id, removed }, 'run retry scheduled');
  try {
    // Bounded: Postgres already holds the retry; whatever is not enqueued in time the reconciler enqueues.
    await withDeadline(deps.producer.undoneChunks(s.em, run.id, { repair: true }), ENQUEUE_DEADLINE_MS, 'enqueue');
  } catch (err) {
    s.log.warn({ runId: run.id, err: (err as Error).message }, 'could not enqueue retry; the reconciler will');
  }
  return toEvalRunDto(run);
}

// ---------------------------------------------------------------- reads

export async function findRun(em: EntityManager, tenantId: string, runId: string): Promise<EvalRunRow> {
  const run = await findRunRow(em, tenantId, runId);
  if (!run) throw notFound('eval run', runId);
  return run;
}

export async function getEvalRun(s: Pick<RequestScope, 'em' | 'tenantId'>, runId: string): Promise<EvalRunDto> {
  return toEvalRunDto(await findRun(s.em, s.tenantId, runId));
}

/** A dataset's runs, newest first: `limit + 1` rows from `before` (NOT_FOUND for a dataset not the tenant's). */
export async function listRuns(
  em: EntityManager,
  tenantId: string,
  datasetId: string,
  status: EvalRunRow['status'] | undefined,
  before: string | undefined,
  limit: number,
  label?: RunLabel,
): Promise<EvalRunRow[]> {
  await findDataset(em, tenantId, datasetId);
  return listRunRows(em, tenantId, datasetId, status, before, limit, label);
}

/**
 * A run's results joined with their items, in item order, a keyset page at a
 * time, cut short when the page would exceed `maxBytes` (a single larger row
 * still comes alone).
 */
export async function listRunItems(
  em: EntityManager,
  tenantId: string,
  runId: string,
  status: ItemStatus | undefined,
  after: string | undefined,
  limit: number,
  maxBytes: number,
  criterion?: CriterionFilter,
): Promise<{ rows: RunItemRow[]; truncated: boolean }> {
  const run = await findRun(em, tenantId, runId);
  if (criterion && !(run.criteria_stats ?? []).some((c) => c.name === criterion.name)) {
    const names = (run.criteria_stats ?? []).map((c) => c.name);
    throw new DomainError('BAD_REQUEST', `eval run ${runId} has no criterion "${criterion.name}" (its criteria: ${names.length ? names.join(', ') : 'none, it has one evaluator'})`);
  }
  return cutRows(await listRunItemRows(em, runId, status, after, limit, maxBytes, criterion));
}

export type ItemChange = 'improved' | 'regressed' | 'unchanged' | 'not_comparable';

/** One item of a comparison: the head's score minus the base's, null when either is an error. */
export function compareItem(r: CompareRow): CompareRow & { delta: number | null; change: ItemChange } {
  const comparable = r.base_status !== 'error' && r.head_status !== 'error' && r.base_score !== null && r.head_score !== null;
  const delta = comparable ? (r.head_score as number) - (r.base_score as number) : null;
  const change: ItemChange = delta === null ? 'not_comparable' : delta > 1e-9 ? 'improved' : delta < -1e-9 ? 'regressed' : 'unchanged';
  return { ...r, delta, change };
}

/**
 * Scores of two runs of the tenant side by side, over the items both scored
 * (`limit + 1` rows after `after`, keyset on both runs); plus the summary
 * counts, computed once per pair of finished runs and kept (pairSummary).
 */
export async function compareRuns(em: EntityManager, tenantId: string, baseId: string, headId: string, after: string | undefined, limit: number, alpha = 0.05) {
  const [base, head] = [await findRun(em, tenantId, baseId), await findRun(em, tenantId, headId)];
  const withCriteria = base.criteria_stats !== null && head.criteria_stats !== null;
  const summary = await pairSummary(em, tenantId, baseId, headId, withCriteria);
  const rows = await compareRows(em, baseId, headId, after, limit);
  const both = summary.both;
  return {
    base,
    head,
    summary: {
      improved: summary.improved,
      regressed: summary.regressed,
      unchanged: summary.unchanged,
      not_comparable: summary.not_comparable,
      only_in_base: Math.max(0, base.completed_count - both),
      only_in_head: Math.max(0, head.completed_count - both),
    },
    statistics: compareStatistics(summary, alpha),
    // per criterion only when both runs have several (one more statement over the same pairs, kept with the summary)
    criteria: withCriteria ? criteriaComparisons(summary.criteria ?? [], alpha) : [],
    rows,
  };
}

/**
 * Two runs' items side by side (those both scored), in item order, a keyset
 * page at a time, each page on a connection of its own (like exportRunItems).
 */
export async function* exportCompareRows(
  s: Pick<RequestScope, 'em' | 'tenantId'>,
  baseId: string,
  headId: string,
  pageLimit: number,
): AsyncGenerator<CompareRow[], void> {
  await findRun(s.em, s.tenantId, baseId);
  await findRun(s.em, s.tenantId, headId);
  let after: string | undefined;
  for (;;) {
    const rows = await compareRows(s.em, baseId, headId, after, pageLimit);
    // a run deleted since the export began: its results are being purged, so fail the export rather than end it short
    await findRun(s.em, s.tenantId, baseId);
    await findRun(s.em, s.tenantId, headId);
    const page = rows.slice(0, pageLimit);
    if (page.length > 0) yield page;
    if (rows.length <= pageLimit) return;
    after = page[page.length - 1]!.item_id;
  }
}

/**
 * A run's results with their items, in item order, one keyset page at a
 * time: each page is read on a connection of its own and released before the
 * caller writes it out, so a slow reader holds no database connection.
 */
export async function* exportRunItems(
  s: Pick<RequestScope, 'em' | 'tenantId'>,
  runId: string,
  status: ItemStatus | undefined,
  pageLimit: number,
  maxBytes: number,
): AsyncGenerator<RunItemRow[], void> {
  await findRun(s.em, s.tenantId, runId);
  let after: string | undefined;
  for (;;) {
    const { rows, truncated } = cutRows(await listRunItemRows(s.em, runId, status, after, pageLimit, maxBytes));
    // The run's row goes before any of its results (run-deletion.service.ts): still there after the page was read,
    // the page is whole; gone, the export fails instead of ending short on a run being purged.
    await findRun(s.em, s.tenantId, runId);
    const page = rows.slice(0, pageLimit);
    if (page.length > 0) yield page;
    if (!(truncated || rows.length > pageLimit) || page.length === 0) return;
    after = page[page.length - 1]?.item_id;
  }
}

