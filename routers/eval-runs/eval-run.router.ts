/**
 * eval-runs: schedule and read eval runs.
 * Jobs: jobs/eval-runs/ (run-start, run-chunk, reconcile).
 * Watching: watchEvalRun here and GET /v1/eval-runs/{id}/events (eval-run-events.route.ts),
 * both fed by eval-run-watch.service.ts.
 * Entities: EvalRun, EvalRunChunk, EvalRunItem.
 */
import { onRunFinished } from '../../domain/eval-runs/run-events.ts';
import { failRun, reopenForRetry } from '../../domain/eval-runs/run-lifecycle.ts';
import { TRPCError } from '@trpc/server';
import { withDeadline } from '../../domain/shared/deadline.ts';
import { toTRPCError } from '../../server/errors.ts';
import { DomainError, sanitizeError } from '../../domain/shared/errors.ts';
import { crashNow } from '../../domain/shared/faults.ts';
import { readProcedure, router, writeProcedure } from '../../server/trpc.ts';
import { decodeCursor, toPage } from '../../domain/shared/pagination.ts';
import { toEvalRunDto } from '../../domain/eval-runs/eval-run.mapper.ts';
import { isFinished, openWatch, watchEvalRun, type WatchHandle } from '../../domain/eval-runs/eval-run-watch.service.ts';
import type { Context } from '../../server/context.ts';
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
} from '../../domain/eval-runs/eval-run.schema.ts';
import { compareRuns, enqueueRunStart, findRun, insertPendingRun, listRunItems, listRuns } from '../../domain/eval-runs/eval-run.service.ts';
import { checkIdempotencyKey, scheduleIdempotently } from '../../domain/eval-runs/idempotency.service.ts';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';
import { z } from 'zod';

const READ_ERRORS = [400, 401, 403, 404, 429, 503];
/** How long a request waits on Redis for an enqueue; the reconciler backs up whatever is left. */
const ENQUEUE_DEADLINE_MS = 2_000;

export const evalRunRouter = router({
  scheduleEvalRun: writeProcedure
    .meta({
      openapi: {
        method: 'POST',
        path: '/v1/datasets/{id}/runs',
        operationId: 'scheduleEvalRun',
        tags: ['eval-runs'],
        summary: 'Schedule an eval run against a dataset version',
        description:
          'Send an `Idempotency-Key` header to make retries safe: the same key with the same body answers the same run ' +
          '(same 202 body) for 24 h; with another body 422; while the first request is still in flight 409.',
        successDescription: 'Run scheduled',
        requestHeaders: z.object({
          'idempotency-key': z.string().max(255).optional().describe('Any unique string (e.g. a UUID) per logical request; kept 24 h'),
        }),
        errorResponses: [400, 401, 403, 404, 409, 413, 422, 429, 503],
      },
      successStatus: 202,
      requestSchemaId: 'ScheduleEvalRunRequest',
      direct: true,
    })
    .input(scheduleEvalRunInput)
    .output(evalRunSchema)
    .mutation(async ({ ctx, input }) => {
      const tenantId = ctx.principal.tenantId;
      const key = ctx.headers['idempotency-key'];
      const { MAX_ACTIVE_RUNS_PER_TENANT, MAX_ITEMS_PER_RUN } = ctx.container.env;
      const caps = { maxActiveRuns: MAX_ACTIVE_RUNS_PER_TENANT, maxItemsPerRun: MAX_ITEMS_PER_RUN };
      let run: EvalRunDto;
      if (key !== undefined) {
        const r = await scheduleIdempotently(ctx.em, tenantId, checkIdempotencyKey(key), input, caps);
        if (r.replayed) return r.run;
        run = r.run;
      } else {
        run = toEvalRunDto(await insertPendingRun(ctx.em, tenantId, input.id, input.eval_version_id, caps));
      }
      ctx.log.info({ runId: run.id, datasetId: run.dataset_id, items: run.item_count }, 'run scheduled');
      if (ctx.container.faults.crashBeforeEnqueue) crashNow();
      await enqueueRunStart(ctx.container, run.id);
      return run;
    }),

  listEvalRuns: readProcedure
    .meta({
      openapi: { method: 'GET', path: '/v1/datasets/{id}/runs', operationId: 'listEvalRuns', tags: ['eval-runs'], summary: 'List a dataset\'s eval runs, newest first', errorResponses: READ_ERRORS },
    })
    .input(listEvalRunsInput)
    .output(listEvalRunsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listRuns(ctx.em, ctx.principal.tenantId, input.id, input.status, decodeCursor(input.cursor, 'string', 'runs'), input.limit);
      return toPage(rows, input.limit, (r) => r.id, toEvalRunDto, { list: 'runs' });
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
      const c = await compareRuns(ctx.em, ctx.principal.tenantId, input.base, input.head, decodeCursor(input.cursor, 'string', 'compare'), input.limit);
      const { data, next_cursor } = toPage(c.rows, input.limit, (r) => r.item_id, (r) => {
        const comparable = r.base_status !== 'error' && r.head_status !== 'error' && r.base_score !== null && r.head_score !== null;
        const delta = comparable ? (r.head_score as number) - (r.base_score as number) : null;
        const change = delta === null ? 'not_comparable' : delta > 1e-9 ? 'improved' : delta < -1e-9 ? 'regressed' : 'unchanged';
        return { ...r, delta, change } as const;
      }, { list: 'compare' });
      return { base_run_id: c.base.id, head_run_id: c.head.id, summary: c.summary, data, next_cursor };
    }),

  listEvalRunItems: readProcedure
    .meta({
      openapi: { method: 'GET', path: '/v1/eval-runs/{id}/items', operationId: 'listEvalRunItems', tags: ['eval-runs'], summary: 'List a run\'s results with their items, in item order', errorResponses: READ_ERRORS },
    })
    .input(listEvalRunItemsInput)
    .output(listEvalRunItemsOutput)
    .query(async ({ ctx, input }) => {
      const after = decodeCursor(input.cursor, 'string', 'run-items');
      const { rows, truncated } = await listRunItems(ctx.em, ctx.principal.tenantId, input.id, input.status, after, input.limit, ctx.container.env.MAX_PAGE_BYTES);
      return toPage(rows, input.limit, (r) => r.item_id, (r) => ({ ...r, output: r.output ?? null, expected_output: r.expected_output ?? null }), { list: 'run-items', truncated });
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

  // No REST meta: trpc-to-openapi cannot serve a subscription; REST has GET /v1/eval-runs/{id}/events (same generator).
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
        // Bounded: Postgres already holds the retry; whatever is not enqueued in time the reconciler enqueues.
        await withDeadline(ctx.container.producer.undoneChunks(ctx.em, run.id, { repair: true }), ENQUEUE_DEADLINE_MS, 'enqueue');
      } catch (err) {
        ctx.log.warn({ runId: run.id, err: (err as Error).message }, 'could not enqueue retry; the reconciler will');
      }
      return toEvalRunDto(run);
    }),
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
