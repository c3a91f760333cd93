/**
 * evals: evaluator definitions with immutable versions. Configs are checked
 * twice: by the zod union (shape) and by the engines (a regex must compile
 * under RE2, a JSON schema under ajv); either failure is a 400 naming the field.
 * Jobs: domain/evaluators/evaluator-cache.ts compiles versions for the workers.
 * Entities: Eval, EvalVersion.
 */
import { decodeCursor, toPage } from '../../domain/shared/pagination.ts';
import { readProcedure, router, writeProcedure } from '../../server/trpc.ts';
import { restMeta } from '../meta.ts';
import { toCreatedEvalDto, toEvalDto, toEvalVersionDto } from '../../domain/evals/eval.mapper.ts';
import { createEvalInput, createEvalVersionInput, evalIdInput, evalSchema, evalVersionSchema, listEvalsInput, listEvalsOutput } from '../../domain/evals/eval.schema.ts';
import { createEval, createEvalVersion, findEval, listEvals } from '../../domain/evals/eval.service.ts';

const rest = restMeta('evals');

export const evalRouter = router({
  createEval: writeProcedure
    .meta(rest('POST', '/v1/evals', { summary: 'Create an eval with its first version', successDescription: 'Eval created', errors: [413], successStatus: 201 }))
    .input(createEvalInput)
    .output(evalSchema)
    .mutation(async ({ ctx, input }) =>
      toCreatedEvalDto(await createEval(ctx.em, ctx.principal.tenantId, input, { providers: ctx.container.env.EVALGATE_PROVIDERS, pool: ctx.container.evaluatorPool })),
    ),

  createEvalVersion: writeProcedure
    .meta(
      rest('POST', '/v1/evals/{id}/versions', {
        summary: 'Add a version to an eval (earlier versions stay as they are)',
        successDescription: 'Version created',
        errors: [404, 413],
        successStatus: 201,
      }),
    )
    .input(createEvalVersionInput)
    .output(evalVersionSchema)
    .mutation(async ({ ctx, input }) =>
      toEvalVersionDto(await createEvalVersion(ctx.em, ctx.principal.tenantId, input.id, input.evaluator, { providers: ctx.container.env.EVALGATE_PROVIDERS, pool: ctx.container.evaluatorPool })),
    ),

  listEvals: readProcedure
    .meta(rest('GET', '/v1/evals', { summary: 'List evals with their latest version, newest first' }))
    .input(listEvalsInput)
    .output(listEvalsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listEvals(ctx.em, ctx.principal.tenantId, decodeCursor(input.cursor, 'string', 'evals'), input.limit);
      return toPage(rows, input.limit, (r) => r.id, toEvalDto, { list: 'evals' });
    }),

  getEval: readProcedure
    .meta(rest('GET', '/v1/evals/{id}', { summary: 'Get an eval with its latest version', errors: [404] }))
    .input(evalIdInput)
    .output(evalSchema)
    .query(async ({ ctx, input }) => toEvalDto(await findEval(ctx.em, ctx.principal.tenantId, input.id))),
});
