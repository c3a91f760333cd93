/**
 * A run's target: what produces each item's output before it is scored.
 * Imports only zod. Providers and endpoints are names configured in the
 * environment (EVALGATE_PROVIDERS, EVALGATE_TARGETS): no URL, header or key
 * is ever part of a run, a job payload or an answer.
 */
import { z } from 'zod';

const name = z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'letters, digits, _ and -, at most 100');

/** A template string: {{input}}, {{input.<path>}}, {{expected_output}}, {{expected_output.<path>}}, {{metadata.<path>}}. */
const template = z.string().min(1).max(100_000);

export const chatMessage = z.strictObject({
  role: z.enum(['system', 'user', 'assistant', 'developer']),
  content: template.describe('Template over {{input}}, {{input.<path>}}, {{expected_output}} and {{metadata.<path>}}; JSON values are rendered as JSON'),
});

/** The sampling parameters passed through to chat completions (bounded; anything else is refused). */
export const chatParams = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  max_tokens: z.int().min(1).max(200_000).optional(),
  max_completion_tokens: z.int().min(1).max(200_000).optional(),
  seed: z.int().min(-(2 ** 53) + 1).max(2 ** 53 - 1).optional(),
  stop: z.union([z.string().min(1).max(200), z.array(z.string().min(1).max(200)).min(1).max(4)]).optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
  response_format: z
    .union([
      z.strictObject({ type: z.enum(['text', 'json_object']) }),
      z.strictObject({
        type: z.literal('json_schema'),
        json_schema: z
          .strictObject({ name: name, schema: z.record(z.string(), z.unknown()), strict: z.boolean().optional(), description: z.string().max(1_000).optional() })
          .refine((s) => Buffer.byteLength(JSON.stringify(s)) <= 32_768, { message: 'at most 32 KB as JSON' }),
      }),
    ])
    .optional(),
});

export const datasetOutputTarget = z.strictObject({ type: z.literal('dataset_output') }).describe("Score the output stored with each item (the default)");

export const chatCompletionTarget = z
  .strictObject({
    type: z.literal('chat_completion'),
    provider: name.describe('A provider configured in EVALGATE_PROVIDERS (the judge\'s registry; one shared budget per provider)'),
    model: z.string().min(1).max(200),
    messages: z.array(chatMessage).min(1).max(50).optional().describe('The request\'s messages, rendered per item'),
    messages_from: z.literal('input').optional().describe('Send each item\'s input as the messages (it must be an array of {role, content})'),
    params: chatParams.optional(),
    output: z.enum(['text', 'json']).default('text').describe('json: the answer is parsed, and an unparsable one is retried, then the item\'s error'),
  })
  .refine((t) => (t.messages === undefined) !== (t.messages_from === undefined), { message: 'give exactly one of messages and messages_from', path: ['messages'] })
  .describe('One OpenAI-compatible chat-completions call per item');

/**
 * The body template: a JSON object or array whose strings (at any depth) are templates, or one
 * template string ("{{input}}": the item's input is the body). A string that is exactly one
 * placeholder is replaced by that JSON value itself.
 */
const jsonTemplate = z
  .union([z.record(z.string(), z.unknown()), z.array(z.unknown()).max(10_000), z.string().min(1)])
  .refine((v) => Buffer.byteLength(JSON.stringify(v)) <= 65_536, { message: 'a JSON value of at most 64 KB' });

export const httpTarget = z
  .strictObject({
    type: z.literal('http'),
    endpoint: name.describe('An endpoint configured in EVALGATE_TARGETS (URL, method, headers and credentials live there)'),
    body: jsonTemplate.describe('The JSON body, rendered per item: strings are templates; "{{input}}" alone is replaced by the JSON value itself'),
    output_path: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a dot path such as answer or choices.0.text')
      .max(500)
      .optional()
      .describe('Where the output is in the JSON answer; the whole answer when omitted'),
  })
  .describe('The team\'s own application: one HTTP call per item');

export const targetSchema = z
  .discriminatedUnion('type', [datasetOutputTarget, chatCompletionTarget, httpTarget])
  .meta({ id: 'Target' });

export type TargetConfig = z.infer<typeof targetSchema>;
export type ChatCompletionTargetConfig = z.infer<typeof chatCompletionTarget>;
export type HttpTargetConfig = z.infer<typeof httpTarget>;
