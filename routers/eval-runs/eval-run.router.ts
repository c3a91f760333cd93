/**
 * eval-runs: schedule and read eval runs.
 * Jobs: jobs/eval-runs/ (run-start, run-chunk, reconcile).
 * Entities: EvalRun, EvalRunChunk, EvalRunItem.
 */
import { enqueueUndoneChunks } from '../../jobs/eval-runs/enqueue.ts';
import { onRunFinished } from '../../jobs/eval-runs/run-events.ts';
import { failRun, reopenForRetry } from '../../jobs/eval-runs/run-lifecycle.ts';
import { DomainError } from '../../server/errors.ts';
import { crashNow } from '../../server/faults.ts';
import { readProcedure, router, writeProcedure } from '../../server/trpc.ts';
import { decodeCursor, toPage } from '../../server/pagination.ts';
import { toEvalRunDto } from './eval-run.mapper.ts';
import {
  compareEvalRunsInput,
  compareEvalRunsOutput,
  evalRunIdInput,
  evalRunSchema,
  listEvalRunItemsInput,
  listEvalRunItemsOutput,
  listEvalRunsInput,
  listEvalRunsOutput,
  scheduleEvalRunInput,
} from './eval-run.schema.ts';
import { compareRuns, enqueueRunStart, findRun, insertPendingRun, listRunItems, listRuns } from './eval-run.service.ts';

const READ_ERRORS = [400, 401, 403, 404, 429, 503];

export const evalRunRouter = router({
  scheduleEvalRun: writeProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/v1/datasets/{id}/runs',
        operationId: 'scheduleEvalRun',
        tags: ['eval-runs'],
        summary: 'Schedule an eval run against a dataset version',
        successDescription: 'Run scheduled',
        errorResponses: [400, 401, 403, 404, 413, 415, 429, 503],
      },
      successStatus: 202,
      requestSchemaId: 'ScheduleEvalRunRequest',
    })
    .input(scheduleEvalRunInput)
    .output(evalRunSchema)
    .mutation(async ({ ctx, input }) => {
      const run = await insertPendingRun(ctx.em, ctx.principal.tenantId, input.id, input.eval_version_id);
      ctx.log.info({ runId: run.id, datasetId: run.dataset_id, items: run.item_count }, 'run scheduled');
      if (ctx.container.faults.crashBeforeEnqueue) crashNow();
      await enqueueRunStart(ctx.container, run.id);
      return toEvalRunDto(run);
    }),

  listEvalRuns: readProcedure
    .meta({
      openapi: { method: 'GET', path: '/v1/datasets/{id}/runs', operationId: 'listEvalRuns', tags: ['eval-runs'], summary: 'List a dataset\'s eval runs, newest first', errorResponses: READ_ERRORS },
    })
    .input(listEvalRunsInput)
    .output(listEvalRunsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listRuns(ctx.em, ctx.principal.tenantId, input.id, input.status, decodeCursor(input.cursor, 'string'), input.limit);
      return toPage(rows, input.limit, (r) => r.id, toEvalRunDto);
    }),

  // Declared before getEvalRun: REST paths match in declaration order, and /compare would match /{id}.
  compareEvalRuns: readProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/v1/eval-runs/compare',
        operationId: 'compareEvalRuns',
        tags: ['eval-runs'],
        summary: 'Compare two runs item by item',
        description: 'Items scored in both runs, in item order, with each score and the change; the summary counts every such item.',
        errorResponses: READ_ERRORS,
      },
    })
    .input(compareEvalRunsInput)
    .output(compareEvalRunsOutput)
    .query(async ({ ctx, input }) => {
      const c = await compareRuns(ctx.em, ctx.principal.tenantId, input.base, input.head, decodeCursor(input.cursor, 'string'), input.limit);
      const { data, next_cursor } = toPage(c.rows, input.limit, (r) => r.item_id, (r) => {
        const comparable = r.base_status !== 'error' && r.head_status !== 'error' && r.base_score !== null && r.head_score !== null;
        const delta = comparable ? (r.head_score as number) - (r.base_score as number) : null;
        const change = delta === null ? 'not_comparable' : delta > 1e-9 ? 'improved' : delta < -1e-9 ? 'regressed' : 'unchanged';
        return { ...r, delta, change } as const;
      });
      return { base_run_id: c.base.id, head_run_id: c.head.id, summary: c.summary, data, next_cursor };
    }),

  listEvalRunItems: readProcedure
    .meta({
      openapi: { method: 'GET', path: '/v1/eval-runs/{id}/items', operationId: 'listEvalRunItems', tags: ['eval-runs'], summary: 'List a run\'s results with their items, in item order', errorResponses: READ_ERRORS },
    })
    .input(listEvalRunItemsInput)
    .output(listEvalRunItemsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listRunItems(ctx.em, ctx.principal.tenantId, input.id, input.status, decodeCursor(input.cursor, 'string'), input.limit);
      return toPage(rows, input.limit, (r) => r.item_id, (r) => ({ ...r, output: r.output ?? null, expected_output: r.expected_output ?? null }));
    }),

  getEvalRun: readProcedure
    .meta({
      openapi: {
        method: 'GET',
        path: '/v1/eval-runs/{id}',
        operationId: 'getEvalRun',
        tags: ['eval-runs'],
        summary: 'Get an eval run with its status and counters',
        successDescription: 'The eval run',
        errorResponses: [400, 401, 403, 404, 429, 503],
      },
    })
    .input(evalRunIdInput)
    .output(evalRunSchema)
    .query(async ({ ctx, input }) => toEvalRunDto(await findRun(ctx.em, ctx.principal.tenantId, input.id))),

  cancelEvalRun: writeProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/v1/eval-runs/{id}/cancel',
        operationId: 'cancelEvalRun',
        tags: ['eval-runs'],
        summary: 'Cancel a pending or running eval run',
        description:
          'The run ends `failed` with `error_message: "canceled"` (the status enum has no canceled state). ' +
          'Queued chunks become no-ops; a chunk already being scored records nothing.',
        successDescription: 'Run canceled',
        errorResponses: [400, 401, 403, 404, 409, 429, 503],
      },
      successStatus: 202,
    })
    .input(evalRunIdInput)
    .output(evalRunSchema)
    .mutation(async ({ ctx, input }) => {
      const tenantId = ctx.principal.tenantId;
      const canceled = await failRun(ctx.em, input.id, 'canceled', tenantId);
      if (canceled) {
        ctx.log.info({ runId: input.id }, 'run canceled');
        await onRunFinished(ctx.container, canceled.id);
        return toEvalRunDto(canceled);
      }
      const run = await findRun(ctx.em, tenantId, input.id);
      throw new DomainError('CONFLICT', `eval run ${input.id} already ended (${run.status}); only pending or running runs can be canceled`);
    }),

  retryEvalRun: writeProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/v1/eval-runs/{id}/retry',
        operationId: 'retryEvalRun',
        tags: ['eval-runs'],
        summary: 'Re-evaluate the error items of a finished eval run',
        description:
          'Deletes the run\'s `error` results, takes exactly them off the counters and scores those items again; ' +
          'passed and failed results are kept. Items a canceled run never scored are scored too.',
        successDescription: 'Retry scheduled',
        errorResponses: [400, 401, 403, 404, 409, 429, 503],
      },
      successStatus: 202,
    })
    .input(evalRunIdInput)
    .output(evalRunSchema)
    .mutation(async ({ ctx, input }) => {
      const { run, removed } = await reopenForRetry(ctx.em, ctx.principal.tenantId, input.id);
      ctx.log.info({ runId: run.id, removed }, 'run retry scheduled');
      try {
        await enqueueUndoneChunks(ctx.container, ctx.em, run.id, { repair: true });
      } catch (err) {
        ctx.log.warn({ runId: run.id, err: (err as Error).message }, 'could not enqueue retry; the reconciler will');
      }
      return toEvalRunDto(run);
    }),
});
