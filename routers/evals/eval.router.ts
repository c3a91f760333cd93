/**
 * evals: evaluator definitions with immutable versions. Configs are checked
 * twice: by the zod union (shape) and by the engines (a regex must compile
 * under RE2, a JSON schema under ajv); either failure is a 400 naming the field.
 * Jobs: domain/evaluators/evaluator-cache.ts compiles versions for the workers.
 * Entities: Eval, EvalVersion.
 */
import { TRPCError } from '@trpc/server';
import { checkEvaluatorEngines } from '../../domain/evaluators/evaluator-pool.ts';
import type { EvaluatorConfig } from '../../domain/evaluators/evaluator.schema.ts';
import { formatIssues } from '../../domain/shared/errors.ts';
import { decodeCursor, toPage } from '../../domain/shared/pagination.ts';
import { readProcedure, router, writeProcedure } from '../../server/trpc.ts';
import { toEvalDto, toEvalVersionDto } from '../../domain/evals/eval.mapper.ts';
import { createEvalInput, createEvalVersionInput, evalIdInput, evalSchema, evalVersionSchema, listEvalsInput, listEvalsOutput } from '../../domain/evals/eval.schema.ts';
import { createEval, createEvalVersion, findEval, listEvals } from '../../domain/evals/eval.service.ts';

/**
 * The engine checks the zod union cannot do; issues are reported under `evaluator.`.
 * A JSON schema costly to compile is compiled on a worker thread, so the API's event loop stays free.
 */
async function checkEvaluator(evaluator: EvaluatorConfig, providers: Record<string, unknown>): Promise<EvaluatorConfig> {
  if (evaluator.type === 'llm_judge' && !Object.hasOwn(providers, evaluator.provider)) {
    const known = Object.keys(providers);
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `invalid input: evaluator.provider: unknown provider "${evaluator.provider}" (configured: ${known.length ? known.join(', ') : 'none; set EVALGATE_PROVIDERS'})`,
    });
  }
  const issues = await checkEvaluatorEngines(evaluator);
  if (issues.length > 0) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: formatIssues(issues.map((i) => ({ ...i, path: ['evaluator', ...i.path] }))) });
  }
  return evaluator;
}

export const evalRouter = router({
  createEval: writeProcedure
    .meta({
      openapi: { method: 'POST', path: '/v1/evals', operationId: 'createEval', tags: ['evals'], summary: 'Create an eval with its first version', successDescription: 'Eval created', errorResponses: [400, 401, 403, 413, 429, 503] },
      successStatus: 201,
    })
    .input(createEvalInput)
    .output(evalSchema)
    .mutation(async ({ ctx, input }) => {
      const created = await createEval(ctx.em, ctx.principal.tenantId, { name: input.name, evaluator: await checkEvaluator(input.evaluator, ctx.container.env.EVALGATE_PROVIDERS) });
      return { ...toEvalDto({ ...created.eval, v_id: created.version.id, v_version: 1, v_evaluator: created.version.evaluator, v_created_at: created.version.created_at }) };
    }),

  createEvalVersion: writeProcedure
    .meta({
      openapi: { method: 'POST', path: '/v1/evals/{id}/versions', operationId: 'createEvalVersion', tags: ['evals'], summary: 'Add a version to an eval (earlier versions stay as they are)', successDescription: 'Version created', errorResponses: [400, 401, 403, 404, 413, 429, 503] },
      successStatus: 201,
    })
    .input(createEvalVersionInput)
    .output(evalVersionSchema)
    .mutation(async ({ ctx, input }) => toEvalVersionDto(await createEvalVersion(ctx.em, ctx.principal.tenantId, input.id, await checkEvaluator(input.evaluator, ctx.container.env.EVALGATE_PROVIDERS)))),

  listEvals: readProcedure
    .meta({ openapi: { method: 'GET', path: '/v1/evals', operationId: 'listEvals', tags: ['evals'], summary: 'List evals with their latest version, newest first', errorResponses: [400, 401, 403, 429, 503] } })
    .input(listEvalsInput)
    .output(listEvalsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listEvals(ctx.em, ctx.principal.tenantId, decodeCursor(input.cursor, 'string', 'evals'), input.limit);
      return toPage(rows, input.limit, (r) => r.id, toEvalDto, { list: 'evals' });
    }),

  getEval: readProcedure
    .meta({ openapi: { method: 'GET', path: '/v1/evals/{id}', operationId: 'getEval', tags: ['evals'], summary: 'Get an eval with its latest version', errorResponses: [400, 401, 403, 404, 429, 503] } })
    .input(evalIdInput)
    .output(evalSchema)
    .query(async ({ ctx, input }) => toEvalDto(await findEval(ctx.em, ctx.principal.tenantId, input.id))),
});
