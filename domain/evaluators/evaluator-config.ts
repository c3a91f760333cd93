/**
 * Config validation that needs the engines: the regex pattern must compile
 * under RE2 and the JSON schema must compile under ajv. Kept apart from
 * `evaluator.schema.ts`, which imports only zod.
 */
import { evaluatorConfigSchema, type EvaluatorConfig } from './evaluator.schema.js';
import { compileJsonSchema } from './json-schema.js';
import { compileRegex } from './regex-engine.js';
import { errorMessage } from './value-utils.js';

/**
 * `evaluatorConfigSchema` plus engine checks: a pattern that RE2 rejects (or that
 * compiles to too large a program) is an issue on `pattern`, a JSON schema that
 * ajv cannot compile is an issue on `schema`. Use this wherever a config is
 * accepted from a user.
 */
export const validatedEvaluatorConfigSchema = evaluatorConfigSchema.superRefine((config, ctx) => {
  if (config.type === 'regex') {
    try {
      compileRegex(config.pattern, config.flags);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: errorMessage(e) });
    }
  } else if (config.type === 'json_schema') {
    try {
      compileJsonSchema(config.schema);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['schema'], message: `invalid JSON schema: ${errorMessage(e)}` });
    }
  }
});

/** Parses and fully validates a config, filling in defaults. Throws a ZodError when invalid. */
export function parseEvaluatorConfig(input: unknown): EvaluatorConfig {
  return validatedEvaluatorConfigSchema.parse(input);
}
