/**
 * eval-runs: one zod schema per procedure, used as tRPC input, REST
 * document and (for ids) job payload. Imports zod, and the status enums
 * from the entities that declare them.
 */
import { z } from 'zod';
import { ITEM_STATUSES, RUN_STATUSES } from '../../entities/index.ts';
import { cursor, dateTime, limit, page, uuid } from '../shared/common.schema.ts';
import { MAX_CRITERION_NAME_LENGTH } from '../evaluators/evaluator.schema.ts';
import { targetSchema } from '../targets/target.schema.ts';

/** The most repetitions a run may ask for. */
export const MAX_REPETITIONS = 10;

/** A run's metadata: a small flat-or-nested JSON object, bounded in keys and in serialized size. */
export const MAX_RUN_METADATA_BYTES = 4_096;
export const runMetadata = z
  .record(z.string().min(1).max(100), z.unknown())
  .refine((m) => Object.keys(m).length <= 50, { message: 'at most 50 keys' })
  .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_RUN_METADATA_BYTES, { message: `at most ${MAX_RUN_METADATA_BYTES} bytes as JSON` });
export const runName = z.string().trim().min(1).max(200);

const scheduleEvalRunFields = z.object({
  id: uuid().describe('Dataset id'),
  eval_version_id: uuid().describe('Eval version to run over the dataset\'s latest version'),
  name: runName.optional().describe('A label for the run (a model, a prompt, a commit); returned with it and filterable'),
  metadata: runMetadata.optional().describe('A small JSON object about the run (at most 50 keys, 4 KB); returned with it and filterable by containment'),
  target: targetSchema
    .optional()
    .describe('What produces each item\'s output before it is scored: the stored output (dataset_output, the default), a chat-completions call, or the team\'s HTTP application'),
  outputs_from_run: uuid()
    .optional()
    .describe('Re-score this run\'s samples (a finished run of the same dataset that generated them) with the given eval version: no provider call'),
  cache: z.boolean().optional().describe('Reuse the tenant\'s earlier samples of the same target, rendered request and repetition (default true); false forces fresh calls'),
  max_cost_usd: z
    .number()
    .positive()
    .max(1_000_000)
    .optional()
    .describe('Once the run\'s recorded cost reaches this, no new provider call starts; the run ends failed with "budget exceeded", its results kept'),
  repetitions: z
    .int()
    .min(1)
    .max(MAX_REPETITIONS)
    .optional()
    .describe(`Generate (or read) and score each item this many times (1–${MAX_REPETITIONS}, default 1): each repetition is a sample of its own, a real call`),
  repetition_pass: z
    .strictObject({ min_passed: z.int().min(1).max(MAX_REPETITIONS) })
    .optional()
    .describe('An item passes when at least min_passed of its repetitions pass (default: all of them)'),
});
const repetitionPassFits = (v: { repetitions?: number; repetition_pass?: { min_passed: number } }, ctx: z.RefinementCtx) => {
  if (v.repetition_pass && v.repetition_pass.min_passed > (v.repetitions ?? 1)) {
    ctx.addIssue({ code: 'custom', path: ['repetition_pass', 'min_passed'], message: `min_passed (${v.repetition_pass.min_passed}) exceeds repetitions (${v.repetitions ?? 1})` });
  }
};
export const scheduleEvalRunInput = scheduleEvalRunFields.superRefine(repetitionPassFits);
export type ScheduleEvalRunInput = z.infer<typeof scheduleEvalRunInput>;

/** The contract's request body (the path carries `id`). */
export const scheduleEvalRunRequest = scheduleEvalRunFields.omit({ id: true }).superRefine(repetitionPassFits).meta({ id: 'ScheduleEvalRunRequest' });

export const evalRunIdInput = z.object({ id: uuid().describe('Eval run id') });

export const criterionStatsSchema = z
  .object({
    name: z.string(),
    passed_count: z.int(),
    failed_count: z.int(),
    error_count: z.int().describe('Items on which this criterion errored, or had no outcome because the item\'s generation failed'),
    mean_score: z.number().nullable().describe('Mean of this criterion\'s scores over the items it scored (passed + failed); errors excluded; null until one is scored'),
    pass_rate: z.number().nullable().describe('passed_count / (passed_count + failed_count): errors excluded, as for mean_score; null until one is scored'),
  })
  .meta({ id: 'CriterionStats' });

export const criterionScoreSchema = z
  .object({
    name: z.string(),
    status: z.enum(ITEM_STATUSES),
    score: z.number().nullable(),
    passed: z.boolean().nullable(),
    reason: z.string().nullable(),
    error: z.string().nullable(),
  })
  .meta({ id: 'CriterionScore' });

export const repetitionOutcomeSchema = z
  .object({
    repetition: z.int(),
    status: z.enum(ITEM_STATUSES),
    score: z.number().nullable(),
    passed: z.boolean().nullable(),
    reason: z.string().nullable(),
    error: z.string().nullable(),
    scores: z.array(criterionScoreSchema).optional().describe('Each criterion\'s outcome in this repetition'),
  })
  .meta({ id: 'RepetitionOutcome' });

export const evalRunSchema = z
  .object({
    id: uuid(),
    tenant_id: uuid(),
    dataset_id: uuid(),
    eval_version_id: uuid(),
    status: z.enum(RUN_STATUSES),
    item_count: z.int(),
    completed_count: z.int(),
    started_at: dateTime().nullable(),
    completed_at: dateTime().nullable(),
    error_message: z.string().nullable(),
    created_at: dateTime(),
    name: z.string().nullable().describe('The label given when the run was scheduled'),
    metadata: z.record(z.string(), z.unknown()).nullable().describe('The metadata given when the run was scheduled'),
    dataset_version_id: uuid().describe('The dataset version pinned when the run was scheduled'),
    passed_count: z.int(),
    failed_count: z.int(),
    error_count: z.int(),
    mean_score: z.number().nullable().describe(
      'Mean score over the items scored so far (passed_count + failed_count): items that errored (error_count) are excluded, not counted as 0; null until an item is scored',
    ),
    usage: z
      .object({ prompt_tokens: z.int(), completion_tokens: z.int() })
      .describe('Tokens spent on this run by generation and by llm_judge, every attempt included (cached samples cost nothing)'),
    cost_usd: z.number().nullable().describe('What those tokens cost, when the provider config gives prices'),
    target: targetSchema.describe('What produced the outputs scored (dataset_output: the items\' stored outputs)'),
    outputs_from_run: uuid().nullable().describe('The run whose samples this run re-scores'),
    cache: z.boolean().describe('Whether generation may reuse cached samples'),
    max_cost_usd: z.number().nullable().describe('The run\'s budget, when it has one'),
    criteria: z
      .array(criterionStatsSchema)
      .describe('Per criterion, in the eval version\'s order, for an evaluator with several criteria; empty for one evaluator'),
    repetitions: z.int().describe('How many times each item is generated (or read) and scored'),
    repetition_pass: z
      .object({ min_passed: z.int() })
      .describe('How many of an item\'s repetitions must pass for the item to pass (all of them unless the schedule said otherwise)'),
    sample_count: z.int().describe('item_count × repetitions'),
    completed_samples: z.int().describe('completed_count × repetitions: an item is recorded once all its repetitions are'),
    pass_at_1: z
      .number()
      .nullable()
      .describe('Share of passed samples over the scored items\' repetitions (mean pass rate of one try); errors excluded; null until an item is scored'),
    pass_hat_n: z
      .number()
      .nullable()
      .describe('pass^n: share of the scored items every repetition of which passed; equals the pass rate for one repetition; null until an item is scored'),
    mean_item_sd: z
      .number()
      .nullable()
      .describe('Mean over the scored items of the standard deviation (n − 1) of their repetitions\' scores; null for one repetition'),
  })
  .meta({ id: 'EvalRun' });
export type EvalRunDto = z.infer<typeof evalRunSchema>;

export const errorResponseSchema = z.object({ error: z.string() }).meta({ id: 'ErrorResponse' });

export const listEvalRunsInput = z.object({
  id: uuid().describe('Dataset id'),
  status: z.enum(RUN_STATUSES).optional().describe('Only runs in this status'),
  name: runName.optional().describe('Only runs with exactly this name'),
  metadata: z
    .string()
    .max(MAX_RUN_METADATA_BYTES)
    .transform((text, ctx) => {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        value = undefined;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON object, e.g. {"branch":"main"}' });
        return z.NEVER;
      }
      return value as Record<string, unknown>;
    })
    .optional()
    .describe('Only runs whose metadata contains this JSON object (e.g. {"branch":"main"})'),
  cursor,
  limit,
});
export const listEvalRunsOutput = page(evalRunSchema);

export const sampleSchema = z
  .object({
    output: z.unknown().nullable().describe('The generated output: the parsed value for JSON outputs, else the text; null when generation failed'),
    output_text: z.string().nullable().describe('The output as text'),
    raw_start: z.string().nullable().describe('The start of the last raw answer, when it could not be parsed'),
    finish_reason: z.string().nullable(),
    usage: z.object({ prompt_tokens: z.int(), completion_tokens: z.int() }),
    cost_usd: z.number().nullable(),
    latency_ms: z.int().nullable(),
    attempts: z.int().describe('Requests sent for this sample, 429s included (0 when cached)'),
    cached: z.boolean().describe('Reused from the tenant\'s sample cache: no call, no cost'),
    error: z.string().nullable().describe('Why generation failed after its last attempt (the item is then error)'),
  })
  .meta({ id: 'Sample' });
export type SampleDto = z.infer<typeof sampleSchema>;

export const evalRunItemSchema = z
  .object({
    item_id: uuid(),
    status: z.enum(ITEM_STATUSES),
    score: z.number().nullable(),
    passed: z.boolean().nullable(),
    reason: z.string().nullable(),
    error: z.string().nullable(),
    attempts: z.int(),
    latency_ms: z.int(),
    prompt_tokens: z.int().nullable(),
    completion_tokens: z.int().nullable(),
    cost_usd: z.number().nullable(),
    input: z.unknown(),
    output: z.unknown().nullable(),
    expected_output: z.unknown().nullable(),
    sample: sampleSchema.nullable().describe('What the run\'s target produced for the item (null for runs over the stored outputs); its output is what was scored'),
    repetitions: z
      .array(repetitionOutcomeSchema)
      .nullable()
      .describe('Each repetition\'s outcome for a run with several (null for one); the item\'s score is their mean, its sample is repetition 0\'s'),
    passed_repetitions: z.int().nullable().describe('How many repetitions passed (null for one repetition, or an error)'),
    score_sd: z.number().nullable().describe('Standard deviation (n − 1) of the repetitions\' scores (null for one repetition, or an error)'),
    scores: z
      .array(criterionScoreSchema)
      .nullable()
      .describe('Each criterion\'s outcome, for an evaluator with several criteria (null for one evaluator, and for an item whose generation failed before any criterion ran)'),
  })
  .meta({ id: 'EvalRunItem' });

export const listEvalRunItemsInput = z.object({
  id: uuid().describe('Eval run id'),
  status: z.enum(ITEM_STATUSES).optional().describe('Only items with this result'),
  criterion: z
    .string()
    .max(MAX_CRITERION_NAME_LENGTH)
    .optional()
    .describe('With criterion_status: only items on which this criterion had that outcome'),
  criterion_status: z.enum(ITEM_STATUSES).optional().describe('The outcome of `criterion` to list'),
  cursor,
  limit,
}).superRefine((v, ctx) => {
  if ((v.criterion === undefined) !== (v.criterion_status === undefined)) {
    ctx.addIssue({ code: 'custom', path: [v.criterion === undefined ? 'criterion' : 'criterion_status'], message: 'criterion and criterion_status go together' });
  }
});
export const listEvalRunItemsOutput = page(evalRunItemSchema);

export const compareEvalRunsInput = z.object({
  base: uuid().describe('The run to compare against'),
  head: uuid().describe('The run compared'),
  alpha: z.coerce
    .number()
    .min(0.0001)
    .max(0.5)
    .default(0.05)
    .describe('Significance level of the verdict (default 0.05: a 95 % confidence interval)'),
  cursor,
  limit,
});
export const compareStatisticsSchema = z
  .object({
    alpha: z.number(),
    paired_items: z.int().describe('Items scored (not error) in both runs: what the statistics are over'),
    mean_base: z.number().nullable(),
    mean_head: z.number().nullable(),
    mean_delta: z.number().nullable().describe('Mean of head_score − base_score over the paired items'),
    ci_low: z.number().nullable().describe('Confidence interval (1 − alpha) of mean_delta: paired t; null with fewer than 2 paired items'),
    ci_high: z.number().nullable(),
    p_value: z.number().nullable().describe('Two-sided p-value of the paired t-test (the exact sign test when every difference is equal)'),
    method: z.enum(['paired_t', 'sign_test', 'none']),
    fail_to_pass: z.int().describe('Paired items that failed in base and passed in head'),
    pass_to_fail: z.int().describe('Paired items that passed in base and failed in head'),
    mcnemar_p_value: z.number().describe('Exact McNemar test (two-sided binomial) of fail_to_pass against pass_to_fail'),
    verdict: z
      .enum(['better', 'worse', 'no_significant_difference'])
      .describe('better / worse when p_value < alpha (by the sign of mean_delta), else no_significant_difference'),
  })
  .meta({ id: 'CompareStatistics' });

export const compareEvalRunsOutput = z
  .object({
    base_run_id: uuid(),
    head_run_id: uuid(),
    summary: z.object({
      improved: z.int().describe('Items scored in both runs whose score went up'),
      regressed: z.int().describe('Items scored in both runs whose score went down'),
      unchanged: z.int().describe('Items scored in both runs with the same score'),
      not_comparable: z.int().describe('Items in both runs that are an error in at least one'),
      only_in_base: z.int(),
      only_in_head: z.int(),
    }),
    statistics: compareStatisticsSchema
      .describe('Whether the difference is real: over every paired item, not only this page'),
    criteria: z
      .array(
        z.object({
          name: z.string(),
          summary: z.object({ improved: z.int(), regressed: z.int(), unchanged: z.int(), not_comparable: z.int() }),
          statistics: compareStatisticsSchema,
        }),
      )
      .describe('The same per criterion both runs have (by name, in the base run\'s order): an item without the criterion\'s outcome on a side is not comparable; empty unless both runs have several criteria'),
    data: z.array(
      z.object({
        item_id: uuid(),
        base_status: z.enum(ITEM_STATUSES),
        head_status: z.enum(ITEM_STATUSES),
        base_score: z.number().nullable(),
        head_score: z.number().nullable(),
        delta: z.number().nullable().describe('head_score − base_score; null when either is an error'),
        change: z.enum(['improved', 'regressed', 'unchanged', 'not_comparable']),
      }),
    ),
    next_cursor: z.string().nullable(),
  })
  .meta({ id: 'EvalRunComparison' });
