/**
 * eval-runs: schedule and read eval runs.
 * Jobs: jobs/eval-runs/ (run-start, run-chunk, reconcile).
 * Entities: EvalRun, EvalRunChunk, EvalRunItem.
 */
import { enqueueUndoneChunks } from '../../jobs/eval-runs/enqueue.ts';
import { failRun, reopenForRetry } from '../../jobs/eval-runs/run-lifecycle.ts';
import { DomainError } from '../../server/errors.ts';
import { crashNow } from '../../server/faults.ts';
import { readProcedure, router, writeProcedure } from '../../server/trpc.ts';
import { toEvalRunDto } from './eval-run.mapper.ts';
import { evalRunIdInput, evalRunSchema, scheduleEvalRunInput } from './eval-run.schema.ts';
import { enqueueRunStart, findRun, insertPendingRun } from './eval-run.service.ts';

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
