/** evals: one zod schema per procedure. Imports only zod (and the zod-only evaluator config schema). */
import { z } from 'zod';
import { criteriaConfigSchema, evaluatorConfigSchema } from '../evaluators/evaluator.schema.ts';
import { checkSafeJson, cursor, dateTime, limit, page, safe, uuid } from '../shared/common.schema.ts';

/** One evaluator: a discriminated union on `type`. */
export const singleEvaluatorSchema = evaluatorConfigSchema; // meta id EvaluatorConfig, so each criterion's evaluator is a $ref too
/** Several criteria, each with its own evaluator. */
export const criteriaEvaluatorSchema = criteriaConfigSchema.meta({ id: 'CriteriaEvaluator' });
/** An eval version's evaluator: one evaluator, or several criteria (an object with `criteria`). */
export const evaluatorSchema = z.discriminatedUnion('type', [singleEvaluatorSchema, criteriaEvaluatorSchema]).meta({ id: 'Evaluator' });

export const evalVersionSchema = z
  .object({
    id: uuid(),
    eval_id: uuid(),
    version: z.int(),
    evaluator: evaluatorSchema,
    created_at: dateTime(),
  })
  .meta({ id: 'EvalVersion' });

export const evalSchema = z
  .object({
    id: uuid(),
    tenant_id: uuid(),
    name: z.string(),
    created_at: dateTime(),
    latest_version: evalVersionSchema,
  })
  .meta({ id: 'Eval' });

// Config strings are stored in jsonb: the object-level check keeps `evaluator` a $ref in the document.
export const createEvalInput = z
  .object({ name: safe(z.string().trim().min(1).max(200)), evaluator: evaluatorSchema })
  .superRefine((v, ctx) => checkSafeJson(v.evaluator, ctx, ['evaluator']));
export const createEvalVersionInput = z
  .object({ id: uuid().describe('Eval id'), evaluator: evaluatorSchema })
  .superRefine((v, ctx) => checkSafeJson(v.evaluator, ctx, ['evaluator']));
export const evalIdInput = z.object({ id: uuid().describe('Eval id') });
export const listEvalsInput = z.object({ cursor, limit });
export const listEvalsOutput = page(evalSchema);
