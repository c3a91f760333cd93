/**
 * POST /v1/datasets/{id}/items/upload (uploadDatasetItems): NDJSON, one item
 * per line, streamed. The body is never held in memory: lines are parsed and
 * validated one at a time and staged in bounded autocommit batches, and no
 * connection or transaction is held while the client sends (see
 * dataset-staging.service.ts). One short transaction at the end creates the
 * version, so either every line lands in it or, when any line is bad, nothing
 * is stored and the answer lists bad lines by number.
 * A plain Fastify route because tRPC procedures take parsed JSON inputs.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Container } from '../../server/container.ts';
import { DomainError, formatIssues } from '../../domain/shared/errors.ts';
import { authorize, sendError, uuidParam } from '../../server/plain-route.ts';
import { toDatasetVersionDto } from '../../domain/datasets/dataset.mapper.ts';
import { newItemSchema } from '../../domain/datasets/dataset.schema.ts';
import { abandonUpload, commitUpload, openUpload, purgeStaleUploads, stageItems } from '../../domain/datasets/dataset-staging.service.ts';
import { findDataset, type DatasetVersionRow, type NewItem } from '../../domain/datasets/dataset.service.ts';
import { ndjsonLines } from '../../domain/datasets/ndjson.ts';

export const UPLOAD_PATH = '/v1/datasets/:id/items/upload';
export const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/ndjson'];
const WRONG_TYPE = 'body must be NDJSON, one item per line, sent with Content-Type: application/x-ndjson';
const MAX_REPORTED = 20;
const BATCH_ITEMS = 1_000;
/** Bytes of validated lines held before they are staged; the body guards charge an upload this plus one line. */
export const BATCH_BYTES = 4 * 1024 * 1024;

class BadLines extends Error {}

export async function registerDatasetUpload(app: FastifyInstance, container: Container): Promise<void> {
  await app.register(async (scope) => {
    // Hand the raw stream to the handler: no body parsing, no body limit (lines are bounded instead).
    // Every type, absent or wrong ones too (curl's default is form-urlencoded): the handler then answers
    // one message naming NDJSON, instead of the JSON parser's "must be JSON" / "not valid JSON".
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scope.setErrorHandler((err: { code?: string }, req, reply) => {
      // an unparseable Content-Type header fails before the handler runs
      if (err.code !== 'FST_ERR_CTP_INVALID_MEDIA_TYPE') throw err;
      if (!req.raw.complete) req.raw.resume();
      return sendError(req, reply, new DomainError('BAD_REQUEST', WRONG_TYPE), 'upload');
    });
    scope.post<{ Params: { id: string } }>(UPLOAD_PATH, async (req, reply) => {
      try {
        return await upload(container, req, reply);
      } catch (err) {
        // drain what the client still sends, so it reads our answer instead of a reset
        if (!req.raw.complete) req.raw.resume();
        return sendError(req, reply, err instanceof BadLines ? new DomainError('BAD_REQUEST', err.message) : err, 'upload');
      }
    });
  });
}

async function upload(container: Container, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
  const em = container.orm.em.fork();
  const principal = await authorize(container, em, req, reply, 'write');
  const datasetId = uuidParam(req.params.id);
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!NDJSON_TYPES.includes(type)) {
    throw new DomainError('BAD_REQUEST', WRONG_TYPE);
  }
  const tenantId = principal.tenantId;
  const stream = req.body as Readable;

  await findDataset(em, tenantId, datasetId);
  // Stale uploads are swept here as well as by the reconciler, so an API-only deployment cleans up too.
  await purgeStaleUploads(em, container.env.UPLOAD_STAGING_TTL_MS);
  const uploadId = await openUpload(em, tenantId, datasetId);
  let version;
  try {
    version = await receive(em, stream, uploadId, container.env, () => commitUpload(em, tenantId, datasetId, uploadId));
  } catch (err) {
    await abandonUpload(em, uploadId).catch((cleanupErr: unknown) => req.log.warn({ err: cleanupErr, uploadId }, 'staged upload left for the sweep'));
    throw err;
  }
  req.log.info({ datasetId, version: version.version, items: version.item_count }, 'dataset upload stored');
  return reply.status(201).send(toDatasetVersionDto(version));
}

/** Validates and stages the lines; commits when every line was good. */
async function receive(
  em: EntityManager,
  stream: Readable,
  uploadId: string,
  env: Container['env'],
  commit: () => Promise<DatasetVersionRow>,
): Promise<DatasetVersionRow> {
  const { MAX_ITEM_BYTES, MAX_UPLOAD_ITEMS, UPLOAD_STAGING_TTL_MS } = env;
  const problems: string[] = [];
  let badLines = 0;
  let count = 0;
  let staged = 0;
  let batch: NewItem[] = [];
  let batchBytes = 0;
  let touchedAt = Date.now();
  const flush = async () => {
    if (batch.length > 0 && badLines === 0) {
      await stageItems(em, uploadId, staged, batch);
      staged += batch.length;
      touchedAt = Date.now();
    }
    batch = [];
    batchBytes = 0;
  };
  for await (const line of ndjsonLines(stream, MAX_ITEM_BYTES)) {
    const problem = (message: string) => {
      badLines++;
      if (problems.length < MAX_REPORTED) problems.push(`line ${line.lineNo}: ${message}`);
    };
    if (line.tooLong) {
      problem(`longer than ${MAX_ITEM_BYTES} bytes`);
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line.text);
    } catch {
      problem('not valid JSON');
      continue;
    }
    const parsed = newItemSchema.safeParse(value);
    if (!parsed.success) {
      problem(formatIssues(parsed.error.issues).replace(/^invalid input: /, ''));
      continue;
    }
    count++;
    if (count > MAX_UPLOAD_ITEMS) throw new DomainError('PAYLOAD_TOO_LARGE', `at most ${MAX_UPLOAD_ITEMS} items per upload`);
    if (badLines > 0) continue; // keep validating to report every bad line, but store nothing
    batch.push(parsed.data);
    batchBytes += line.text.length;
    // A slow but live upload still touches its row well within the TTL, so the sweep leaves it alone.
    if (batch.length >= BATCH_ITEMS || batchBytes >= BATCH_BYTES || Date.now() - touchedAt > UPLOAD_STAGING_TTL_MS / 4) await flush();
  }
  if (badLines > 0) {
    throw new BadLines(`${badLines} bad line(s), nothing stored: ${problems.join('; ')}${badLines > problems.length ? '; …' : ''}`);
  }
  if (count === 0) throw new DomainError('BAD_REQUEST', 'the upload holds no items (one JSON object per line)');
  await flush();
  return commit();
}
