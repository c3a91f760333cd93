/**
 * datasets: create datasets, add and delete items (each change is a new
 * immutable version that copies no unchanged item), read versions and items.
 * The NDJSON bulk upload is a streaming route: datasets/dataset-upload.route.ts.
 * Entities: Dataset, DatasetVersion, DatasetItem.
 */
import { z } from 'zod';
import { DomainError } from '../../domain/shared/errors.ts';
import { decodeCursor, toPage } from '../../domain/shared/pagination.ts';
import { ownerProcedure, readProcedure, router, writeProcedure } from '../../server/trpc.ts';
import { restMeta } from '../meta.ts';
import { toDatasetDto, toDatasetItemDto, toDatasetVersionDto } from '../../domain/datasets/dataset.mapper.ts';
import {
  addDatasetItemsInput,
  createDatasetInput,
  datasetIdInput,
  datasetSchema,
  datasetVersionSchema,
  deleteDatasetItemsInput,
  listDatasetItemsInput,
  listDatasetItemsOutput,
  listDatasetsInput,
  listDatasetsOutput,
  listDatasetVersionsInput,
  listDatasetVersionsOutput,
} from '../../domain/datasets/dataset.schema.ts';
import {
  addDatasetItems,
  createDataset,
  deleteDataset,
  deleteDatasetItems,
  findDataset,
  listDatasetItems,
  listDatasets,
  listDatasetVersions,
} from '../../domain/datasets/dataset.service.ts';
import { kickPurge } from '../../domain/eval-runs/run-deletion.service.ts';

const rest = restMeta('datasets');

export const datasetRouter = router({
  createDataset: writeProcedure
    .meta(rest('POST', '/v1/datasets', { summary: 'Create a dataset (version 1, no items)', successDescription: 'Dataset created', errors: [413], successStatus: 201 }))
    .input(createDatasetInput)
    .output(datasetSchema)
    .mutation(async ({ ctx, input }) => toDatasetDto((await createDataset(ctx.em, ctx.principal.tenantId, input)).dataset)),

  listDatasets: readProcedure
    .meta(rest('GET', '/v1/datasets', { summary: 'List datasets, newest first' }))
    .input(listDatasetsInput)
    .output(listDatasetsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listDatasets(ctx.em, ctx.principal.tenantId, decodeCursor(input.cursor, 'string', 'datasets'), input.limit);
      return toPage(rows, input.limit, (r) => r.id, toDatasetDto, { list: 'datasets' });
    }),

  getDataset: readProcedure
    .meta(rest('GET', '/v1/datasets/{id}', { summary: 'Get a dataset', errors: [404] }))
    .input(datasetIdInput)
    .output(datasetSchema)
    .query(async ({ ctx, input }) => toDatasetDto(await findDataset(ctx.em, ctx.principal.tenantId, input.id))),

  deleteDataset: ownerProcedure
    .meta(
      rest('DELETE', '/v1/datasets/{id}', {
        summary: 'Delete a dataset with its versions, items, runs and results (owners only)',
        description:
          'Refused with 409 while one of its runs is pending or running. Answered at once: the dataset and its runs are gone for every read ' +
          'from then on; its items and its runs\' results are deleted in the background, in bounded batches.',
        successDescription: 'Dataset deleted',
        errors: [404, 409],
        successStatus: 204,
      }),
    )
    .input(datasetIdInput)
    .output(z.void())
    .mutation(async ({ ctx, input }) => {
      await deleteDataset(ctx.em, ctx.principal.tenantId, input.id);
      ctx.log.info({ datasetId: input.id }, 'dataset deleted; its items and results go in the background');
      await kickPurge(ctx.container, ctx.log);
    }),

  addDatasetItems: writeProcedure
    // Before .input(): the configured limit is checked on the raw body, so an oversized array is refused before any item is validated.
    .use(async ({ ctx, getRawInput, next }) => {
      const raw = (await getRawInput()) as { items?: unknown } | null | undefined;
      const n = raw !== null && typeof raw === 'object' && Array.isArray(raw.items) ? raw.items.length : 0;
      const max = ctx.container.env.MAX_ITEMS_PER_REQUEST;
      if (n > max) throw new DomainError('PAYLOAD_TOO_LARGE', `items: at most ${max} items per request (got ${n}); upload larger sets as NDJSON to /v1/datasets/{id}/items/upload`);
      return next();
    })
    .meta(
      rest('POST', '/v1/datasets/{id}/items', {
        summary: 'Add items: a new version holding the previous items plus these',
        description: 'At most MAX_ITEMS_PER_REQUEST items (10,000) of MAX_ITEM_BYTES (1 MiB) each, else 413; use `POST /v1/datasets/{id}/items/upload` (NDJSON) for more.',
        successDescription: 'Version created',
        errors: [404, 413],
        successStatus: 201,
      }),
    )
    .input(addDatasetItemsInput)
    .output(datasetVersionSchema)
    .mutation(async ({ ctx, input }) =>
      toDatasetVersionDto(await addDatasetItems(ctx.em, ctx.principal.tenantId, input.id, input.items, { maxItemBytes: ctx.container.env.MAX_ITEM_BYTES })),
    ),

  deleteDatasetItems: writeProcedure
    .meta(
      rest('POST', '/v1/datasets/{id}/items/delete', {
        summary: 'Delete items: a new version without them',
        description: 'Every id must be an item of the latest version (404 names the others). Older versions, and runs pinned to them, keep the items.',
        successDescription: 'Version created',
        errors: [404, 413],
        successStatus: 201,
      }),
    )
    .input(deleteDatasetItemsInput)
    .output(datasetVersionSchema)
    .mutation(async ({ ctx, input }) => toDatasetVersionDto(await deleteDatasetItems(ctx.em, ctx.principal.tenantId, input.id, input.item_ids))),

  listDatasetVersions: readProcedure
    .meta(rest('GET', '/v1/datasets/{id}/versions', { summary: 'List a dataset\'s versions, newest first', errors: [404] }))
    .input(listDatasetVersionsInput)
    .output(listDatasetVersionsOutput)
    .query(async ({ ctx, input }) => {
      const rows = await listDatasetVersions(ctx.em, ctx.principal.tenantId, input.id, decodeCursor(input.cursor, 'number', 'dataset-versions'), input.limit);
      return toPage(rows, input.limit, (r) => r.version, toDatasetVersionDto, { list: 'dataset-versions' });
    }),

  listDatasetItems: readProcedure
    .meta(rest('GET', '/v1/datasets/{id}/items', { summary: 'List the items of a version (default: the latest), in insertion order', errors: [404] }))
    .input(listDatasetItemsInput)
    .output(listDatasetItemsOutput)
    .query(async ({ ctx, input }) => {
      const after = decodeCursor(input.cursor, 'string', 'dataset-items');
      const { rows, truncated } = await listDatasetItems(ctx.em, ctx.principal.tenantId, input.id, input.version, after, input.limit, ctx.container.env.MAX_PAGE_BYTES);
      return toPage(rows, input.limit, (r) => r.id, toDatasetItemDto, { list: 'dataset-items', truncated });
    }),
});
