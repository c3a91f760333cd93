/** Schemas every feature shares: ids, timestamps, list paging. Imports only zod. */
import { z } from 'zod';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1_000;

export const uuid = () => z.uuid({ error: 'must be a UUID' });
export const dateTime = () => z.iso.datetime({ offset: true });

export const cursor = z.string().max(512).optional().describe('Opaque cursor from the previous page\'s next_cursor');
export const limit = z.coerce
  .number()
  .int()
  .min(1)
  .max(MAX_LIMIT)
  .default(DEFAULT_LIMIT)
  .describe(`Page size (1–${MAX_LIMIT}, default ${DEFAULT_LIMIT})`);

/** `{ data, next_cursor }` */
export const page = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page; null on the last page') });
