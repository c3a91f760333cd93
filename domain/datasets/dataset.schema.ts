/** datasets: one zod schema per procedure (tRPC input = REST body/query = document). Imports only zod. */
import { z } from 'zod';
import { checkJsonValue } from '../evaluators/evaluator.schema.ts';
import { checkSafeJson, cursor, dateTime, limit, page, safe, uuid } from '../shared/common.schema.ts';

export const datasetSchema = z
  .object({
    id: uuid(),
    tenant_id: uuid(),
    name: z.string(),
    description: z.string().nullable(),
    latest_version: z.int().describe('Number of the newest version; a new dataset is at version 1 with no items'),
    created_at: dateTime(),
    updated_at: dateTime(),
  })
  .meta({ id: 'Dataset' });
export type DatasetDto = z.infer<typeof datasetSchema>;

export const datasetVersionSchema = z
  .object({
    id: uuid(),
    dataset_id: uuid(),
    version: z.int(),
    item_count: z.int(),
    created_at: dateTime(),
  })
  .meta({ id: 'DatasetVersion' });
export type DatasetVersionDto = z.infer<typeof datasetVersionSchema>;

/** Any JSON value, but present. */
const jsonValue = (what: string) =>
  z.unknown().refine((v) => v !== undefined, { message: `${what} is required` }).describe(`${what}: any JSON value`);

/** Deepest JSON nesting accepted in an item (deeper values cannot be stored or compared safely). */
export const MAX_ITEM_DEPTH = 64;

// Strict: a misspelt field (`expected` for `expected_output`) is refused by name rather than dropped silently.
export const newItemSchema = z
  .strictObject({
    input: jsonValue('input'),
    expected_output: z.unknown().optional().describe('Any JSON value; what a correct output is'),
    output: z.unknown().optional().describe('Any JSON value; the output to score'),
    metadata: z.record(z.string(), z.unknown()).optional().describe('A JSON object, available to evaluators'),
  })
  .superRefine((item, ctx) => {
    for (const field of ['input', 'expected_output', 'output', 'metadata'] as const) {
      if (item[field] === undefined) continue;
      const problem = checkJsonValue(item[field], MAX_ITEM_DEPTH, Number.POSITIVE_INFINITY);
      if (problem) ctx.addIssue({ code: 'custom', path: [field], message: problem });
      else checkSafeJson(item[field], ctx, [field]);
    }
  })
  .meta({ id: 'NewDatasetItem' });

export const datasetItemSchema = z
  .object({
    id: uuid(),
    input: z.unknown(),
    expected_output: z.unknown().nullable(),
    output: z.unknown().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    created_at: dateTime(),
  })
  .meta({ id: 'DatasetItem' });

export const createDatasetInput = z.object({
  name: safe(z.string().trim().min(1).max(200)),
  description: safe(z.string().max(10_000)).nullable().optional(),
});
export const datasetIdInput = z.object({ id: uuid().describe('Dataset id') });
export const listDatasetsInput = z.object({ cursor, limit });
export const listDatasetsOutput = page(datasetSchema);

/**
 * Ceiling of MAX_ITEMS_PER_REQUEST. zod checks an array's `.max()` before its
 * elements; the configured (lower) limit is checked on the raw input, before
 * this schema runs, by the addDatasetItems procedure.
 */
export const MAX_ITEMS_PER_REQUEST_CEILING = 1_000_000;

export const addDatasetItemsInput = z.object({
  id: uuid().describe('Dataset id'),
  items: z
    .array(newItemSchema)
    .min(1)
    .max(MAX_ITEMS_PER_REQUEST_CEILING)
    .describe('Items to add (at most MAX_ITEMS_PER_REQUEST, default 10,000, else 413; larger sets go through the NDJSON upload)'),
});
export const deleteDatasetItemsInput = z.object({
  id: uuid().describe('Dataset id'),
  item_ids: z.array(uuid()).min(1).max(10_000).describe('Items of the latest version to leave out of the new version'),
});

export const listDatasetVersionsInput = z.object({ id: uuid().describe('Dataset id'), cursor, limit });
export const listDatasetVersionsOutput = page(datasetVersionSchema);

export const listDatasetItemsInput = z.object({
  id: uuid().describe('Dataset id'),
  version: z.coerce.number().int().min(1).optional().describe('Dataset version (default: the latest)'),
  cursor,
  limit,
});
export const listDatasetItemsOutput = page(datasetItemSchema);
