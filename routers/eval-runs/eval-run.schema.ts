/**
 * eval-runs: one zod schema per procedure, used as tRPC input, REST
 * document and (for ids) job payload. Imports only zod.
 */
import { z } from 'zod';

export const RUN_STATUS = ['pending', 'running', 'completed', 'failed'] as const;

const uuid = () => z.uuid({ error: 'must be a UUID' });
const dateTime = () => z.iso.datetime({ offset: true });

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
    status: z.enum(RUN_STATUS),
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
    mean_score: z.number().nullable().describe('Mean score of the items that were scored (errors excluded); null before the first'),
  })
  .meta({ id: 'EvalRun' });
export type EvalRunDto = z.infer<typeof evalRunSchema>;

export const errorResponseSchema = z.object({ error: z.string() }).meta({ id: 'ErrorResponse' });
