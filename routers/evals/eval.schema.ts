/** evals: one zod schema per procedure. Imports only zod (and the zod-only evaluator config schema). */
import { z } from 'zod';
import { evaluatorConfigSchema } from '../../jobs/evaluators/evaluator.schema.ts';
import { cursor, dateTime, limit, page, uuid } from '../shared/common.schema.ts';

/** The evaluator definition, a discriminated union on `type`. */
export const evaluatorSchema = evaluatorConfigSchema.meta({ id: 'EvaluatorConfig' });

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

export const createEvalInput = z.object({ name: z.string().trim().min(1).max(200), evaluator: evaluatorSchema });
export const createEvalVersionInput = z.object({ id: uuid().describe('Eval id'), evaluator: evaluatorSchema });
export const evalIdInput = z.object({ id: uuid().describe('Eval id') });
export const listEvalsInput = z.object({ cursor, limit });
export const listEvalsOutput = page(evalSchema);
