/** DELETE /v1/eval-runs/{id}'s answer (domain/eval-runs/run-deletion.service.ts). */
import { z } from 'zod';
import { uuid } from '../shared/common.schema.ts';

export const evalRunDeletionSchema = z
  .object({
    id: uuid(),
    /** the run is gone for every read; its results are being deleted in the background */
    status: z.literal('deleting'),
  })
  .meta({ id: 'EvalRunDeletion' });
export type EvalRunDeletionDto = z.infer<typeof evalRunDeletionSchema>;
