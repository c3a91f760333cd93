import { UnrecoverableError } from 'bullmq';
import type { z } from 'zod';

/** Workers parse every payload; a malformed one can never succeed, so it is not retried. */
export function parsePayload<T extends z.ZodType>(schema: T, data: unknown): z.infer<T> {
  const r = schema.safeParse(data);
  if (!r.success) throw new UnrecoverableError(`malformed job payload: ${r.error.issues.map((i) => i.message).join('; ')}`);
  return r.data;
}
