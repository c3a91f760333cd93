/**
 * eval-runs: schedule, read, compare, watch, cancel and retry eval runs.
 * Use cases: domain/eval-runs/eval-run.service.ts; watching: eval-run-watch.service.ts
 * (also behind GET /v1/eval-runs/{id}/events, eval-run-events.route.ts).
 * Jobs: jobs/eval-runs/ (run-start, run-chunk, reconcile).
 * Entities: EvalRun, EvalRunChunk, EvalRunItem, IdempotencyKey.
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { toEvalRunDto, toRunItemDto } from '../../domain/eval-runs/eval-run.mapper.ts';
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
  type EvalRunDto,
} from '../../domain/eval-runs/eval-run.schema.ts';
import {
  cancelEvalRun,
  compareItem,
  compareRuns,
  getEvalRun,
  listRunItems,
  listRuns,
  retryEvalRun,
  scheduleEvalRun,
  type RequestScope,
} from '../../domain/eval-runs/eval-run.service.ts';
import { isFinished, openWatch, watchEvalRun, type WatchHandle } from '../../domain/eval-runs/eval-run-watch.service.ts';
import { sanitizeError } from '../../domain/shared/errors.ts';
import { decodeCursor, toPage } from '../../domain/shared/pagination.ts';
import type { Principal } from '../../server/auth.ts';
import type { Context } from '../../server/context.ts';
import { toTRPCError } from '../../server/errors.ts';
import { checkProcedure, ownerProcedure, readProcedure, router, writeProcedure } from '../../server/trpc.ts';
import { gateEvalRunInput, gateVerdictSchema } from '../../domain/eval-runs/gate.schema.ts';
import { gateEvalRun } from '../../domain/eval-runs/gate.service.ts';
import { restMeta } from '../meta.ts';
import { evalRunDeletionSchema } from '../../domain/eval-runs/run-deletion.schema.ts';
import { deleteEvalRun } from '../../domain/eval-runs/run-deletion.service.ts';

const rest = restMeta('eval-runs');

const scope = (ctx: Context & { principal: Principal }): RequestScope => ({ em: ctx.em, tenantId: ctx.principal.tenantId, log: ctx.log });

export const evalRunRouter = router({
  scheduleEvalRun: writeProcedure
    .meta(
      rest('POST', '/v1/datasets/{id}/runs', {
        summary: 'Schedule an eval run against a dataset version',
        description:
          'Send an `Idempotency-Key` header to make retries safe: the same key with the same body answers the same run ' +
          '(same 202 body) for 24 h; with another body 422; while the first request is still in flight 409.',
        successDescription: 'Run scheduled',
        requestHeaders: z.object({
          'idempotency-key': z.string().max(255).optional().describe('Any unique string (e.g. a UUID) per logical request; kept 24 h'),
        }),
        errors: [404, 409, 413, 422],
        successStatus: 202,
        requestSchemaId: 'ScheduleEvalRunRequest',
        direct: true,
      }),
    )
    .input(scheduleEvalRunInput)
    .output(evalRunSchema)
    .mutation(async ({ ctx, input }) => scheduleEvalRun(ctx.container, scope(ctx), input, ctx.headers['idempotency-key'])),

  listEvalRuns: readProcedure
    .meta(rest('GET', '/v1/datasets/{id}/runs', { summary: 'List a dataset\'s eval runs, newest first', errors: [404] }))
    .input(listEvalRunsInput)
    .output(listEvalRunsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listRuns(ctx.em, ctx.principal.tenantId, input.id, input.status, decodeCursor(input.cursor, 'string', 'runs'), input.limit, {
        name: input.name,
        metadata: input.metadata,
      });
      return toPage(rows, input.limit, (r) => r.id, toEvalRunDto, { list: 'runs' });
    }),

  // Declared before getEvalRun: REST paths match in declaration order, and /compare would match /{id}.
  compareEvalRuns: readProcedure
    .meta(
      rest('GET', '/v1/eval-runs/compare', {
        summary: 'Compare two runs item by item',
        description: 'Items scored in both runs, in item order, with each score and the change; the summary counts every such item.',
        errors: [404],
      }),
    )
    .input(compareEvalRunsInput)
    .output(compareEvalRunsOutput)
    .query(async ({ ctx, input }) => {
      const c = await compareRuns(ctx.em, ctx.principal.tenantId, input.base, input.head, decodeCursor(input.cursor, 'string', 'compare'), input.limit, input.alpha);
      const { data, next_cursor } = toPage(c.rows, input.limit, (r) => r.item_id, compareItem, { list: 'compare' });
      return { base_run_id: c.base.id, head_run_id: c.head.id, summary: c.summary, statistics: c.statistics, criteria: c.criteria, data, next_cursor };
    }),

  listEvalRunItems: readProcedure
    .meta(rest('GET', '/v1/eval-runs/{id}/items', { summary: 'List a run\'s results with their items, in item order', errors: [404] }))
    .input(listEvalRunItemsInput)
    .output(listEvalRunItemsOutput)
    .query(async ({ ctx, input }) => {
      const after = decodeCursor(input.cursor, 'string', 'run-items');
      const criterion = input.criterion !== undefined && input.criterion_status !== undefined ? { name: input.criterion, status: input.criterion_status } : undefined;
      const { rows, truncated } = await listRunItems(ctx.em, ctx.principal.tenantId, input.id, input.status, after, input.limit, ctx.container.env.MAX_PAGE_BYTES, criterion);
      return toPage(rows, input.limit, (r) => r.item_id, toRunItemDto, { list: 'run-items', truncated });
    }),

  getEvalRun: readProcedure
    .meta(rest('GET', '/v1/eval-runs/{id}', { summary: 'Get an eval run with its status and counters', successDescription: 'The eval run', errors: [404] }))
    .input(evalRunIdInput)
    .output(evalRunSchema)
    .query(async ({ ctx, input }) => getEvalRun(scope(ctx), input.id)),

  // No REST meta: trpc-to-openapi cannot serve a subscription; REST has GET /v1/eval-runs/{id}/events (same feed).
  watchEvalRun: readProcedure
    .input(evalRunIdInput)
    .subscription(async ({ ctx, input, signal }) => {
      // The watcher slot and the first state are taken here, inside the middleware chain, so the cap is a
      // TOO_MANY_REQUESTS and a missing run a NOT_FOUND, not errors mid-stream.
      const handle = openWatch(ctx.container, ctx.principal.tenantId, signal);
      try {
        const watch = await watchEvalRun(ctx.container, ctx.principal.tenantId, input.id, handle.signal);
        return followForSubscription(ctx, input.id, watch, handle, signal);
      } catch (err) {
        handle.end();
        throw err;
      }
    }),

  gateEvalRun: checkProcedure
    .meta(
      rest('POST', '/v1/eval-runs/{id}/gate', {
        summary: 'Apply a pass/fail policy to a run, against a baseline when given',
        description:
          'Answers `passed` or `failed` with the reasons, one entry per check; `pending` while the run has not ended (ask again). ' +
          'The baseline is a run id, or the latest completed run of the same dataset with a name and/or metadata; checks that need one are `skipped` when none is found.',
        successDescription: 'The verdict',
        errors: [404, 409],
      }),
    )
    .input(gateEvalRunInput)
    .output(gateVerdictSchema)
    .mutation(async ({ ctx, input }) => gateEvalRun(scope(ctx), input.id, input.policy, input.baseline)),

  cancelEvalRun: writeProcedure
    .meta(
      rest('POST', '/v1/eval-runs/{id}/cancel', {
        summary: 'Cancel a pending or running eval run',
        description:
          'The run ends `failed` with `error_message: "canceled"` (the status enum has no canceled state). ' +
          'Queued chunks become no-ops; a chunk already being scored records nothing.',
        successDescription: 'Run canceled',
        errors: [404, 409],
        successStatus: 202,
      }),
    )
    .input(evalRunIdInput)
    .output(evalRunSchema)
    .mutation(async ({ ctx, input }) => cancelEvalRun(ctx.container, scope(ctx), input.id)),

  retryEvalRun: writeProcedure
    .meta(
      rest('POST', '/v1/eval-runs/{id}/retry', {
        summary: 'Re-evaluate the error items of a finished eval run',
        description:
          'Deletes the run\'s `error` results, takes exactly them off the counters and scores those items again; ' +
          'passed and failed results are kept. Items a canceled run never scored are scored too.',
        successDescription: 'Retry scheduled',
        errors: [404, 409],
        successStatus: 202,
      }),
    )
    .input(evalRunIdInput)
    .output(evalRunSchema)
    .mutation(async ({ ctx, input }) => retryEvalRun(ctx.container, scope(ctx), input.id)),

  deleteEvalRun: ownerProcedure
    .meta(
      rest('DELETE', '/v1/eval-runs/{id}', {
        summary: 'Delete an eval run with its results (owners only)',
        description:
          'Answered at once with 202 `{id, status: "deleting"}`: from then on the run is gone for every read (404), and its results, ' +
          'samples and chunks are deleted in the background in bounded batches. A pending or running run is refused with 409 ' +
          '(cancel it first), as is a run whose samples an active run re-scores. Deleting a run still being deleted answers 202 again.',
        successDescription: 'Run deleted; its results are being deleted',
        errors: [404, 409],
        successStatus: 202,
      }),
    )
    .input(evalRunIdInput)
    .output(evalRunDeletionSchema)
    .mutation(async ({ ctx, input }) => deleteEvalRun(ctx.container, ctx.em, ctx.principal.tenantId, ctx.log, input.id)),
});

/**
 * The run's EvalRun on every change until it ends (tRPC sends `return` then).
 * Errors are mapped here, since a generator's throw bypasses the middleware;
 * a server shutting down answers SERVICE_UNAVAILABLE, which httpSubscriptionLink
 * retries, so a client moves to another replica instead of seeing a false end.
 */
async function* followForSubscription(
  ctx: Context,
  runId: string,
  watch: AsyncGenerator<EvalRunDto, void>,
  handle: WatchHandle,
  signal: AbortSignal | undefined,
): AsyncGenerator<EvalRunDto, void> {
  let ended = false;
  try {
    for await (const run of watch) {
      ended = isFinished(run);
      yield run;
    }
  } catch (err) {
    const mapped = toTRPCError(err);
    if (mapped.code === 'INTERNAL_SERVER_ERROR') ctx.log.error({ err: sanitizeError(err), runId }, 'watchEvalRun failed');
    throw mapped;
  } finally {
    handle.end();
  }
  if (!ended && handle.serverClosing && !signal?.aborted) throw new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'server is shutting down; reconnect' });
}
