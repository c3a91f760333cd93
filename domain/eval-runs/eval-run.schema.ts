/**
 * eval-runs: one zod schema per procedure, used as tRPC input, REST
 * document and (for ids) job payload. Imports zod, and the status enums
 * from the entities that declare them.
 */
import { z } from 'zod';
import { ITEM_STATUSES, RUN_STATUSES } from '../../entities/index.ts';
import { cursor, dateTime, limit, page, uuid } from '../shared/common.schema.ts';

export const scheduleEvalRunInput = z.object({
  id: uuid().describe('Dataset id'),
  eval_version_id: uuid().describe('Eval version to run over the dataset\'s latest version'),
});
export type ScheduleEvalRunInput = z.infer<typeof scheduleEvalRunInput>;

/** The contract's request body (the path carries `id`). */
export const scheduleEvalRunRequest = scheduleEvalRunInput.omit({ id: true }).meta({ id: 'ScheduleEvalRunRequest' });

export const evalRunIdInput = z.object({ id: uuid().describe('Eval run id') });

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
    dataset_version_id: uuid().describe('The dataset version pinned when the run was scheduled'),
    passed_count: z.int(),
    failed_count: z.int(),
    error_count: z.int(),
    mean_score: z.number().nullable().describe(
      'Mean score over the items scored so far (passed_count + failed_count): items that errored (error_count) are excluded, not counted as 0; null until an item is scored',
    ),
    usage: z
      .object({ prompt_tokens: z.int(), completion_tokens: z.int() })
      .describe('Tokens spent by llm_judge on this run, every attempt included'),
    cost_usd: z.number().nullable().describe('What those tokens cost, when the provider config gives prices'),
  })
  .meta({ id: 'EvalRun' });
export type EvalRunDto = z.infer<typeof evalRunSchema>;

export const errorResponseSchema = z.object({ error: z.string() }).meta({ id: 'ErrorResponse' });

export const listEvalRunsInput = z.object({
  id: uuid().describe('Dataset id'),
  status: z.enum(RUN_STATUSES).optional().describe('Only runs in this status'),
  cursor,
  limit,
});
export const listEvalRunsOutput = page(evalRunSchema);

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
  })
  .meta({ id: 'EvalRunItem' });

export const listEvalRunItemsInput = z.object({
  id: uuid().describe('Eval run id'),
  status: z.enum(ITEM_STATUSES).optional().describe('Only items with this result'),
  cursor,
  limit,
});
export const listEvalRunItemsOutput = page(evalRunItemSchema);

export const compareEvalRunsInput = z.object({
  base: uuid().describe('The run to compare against'),
  head: uuid().describe('The run compared'),
  cursor,
  limit,
});
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
