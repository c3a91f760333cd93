/**
 * The `llm_judge` evaluator config. Imports only zod. The provider is a name
 * configured in EVALGATE_PROVIDERS (base URL, key, limits): no URL or key is
 * ever part of an eval version.
 */
import { z } from 'zod';

const message = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: z
    .string()
    .min(1)
    .max(100_000)
    .describe('Template over {{input}}, {{output}}, {{expected_output}} and {{metadata.<path>}}; JSON values are rendered as JSON'),
});

const numericOutput = z
  .strictObject({ kind: z.literal('numeric'), min: z.number().finite(), max: z.number().finite() })
  .refine((o) => o.max > o.min, { message: 'max must be greater than min', path: ['max'] });
const booleanOutput = z.strictObject({ kind: z.literal('boolean') });
const categoricalOutput = z.strictObject({
  kind: z.literal('categorical'),
  choices: z
    .record(z.string().min(1).max(200), z.number().min(0).max(1))
    .refine((c) => Object.keys(c).length >= 2 && Object.keys(c).length <= 100, { message: 'between 2 and 100 choices' })
    .describe('label → score in [0, 1]'),
});

export const llmJudgeConfigSchema = z.strictObject({
  type: z.literal('llm_judge'),
  provider: z.string().min(1).max(100).describe('Name of a provider configured in EVALGATE_PROVIDERS'),
  model: z.string().min(1).max(200),
  messages: z.array(message).min(1).max(50),
  output: z.union([numericOutput, booleanOutput, categoricalOutput]),
  pass_threshold: z.number().min(0).max(1).default(0.5).describe('passed = normalised score ≥ pass_threshold'),
  params: z
    .strictObject({
      temperature: z.number().min(0).max(2).optional(),
      top_p: z.number().min(0).max(1).optional(),
      max_tokens: z.int().min(1).max(100_000).optional(),
      seed: z.int().optional(),
    })
    .optional(),
});
export type LlmJudgeConfig = z.infer<typeof llmJudgeConfigSchema>;
