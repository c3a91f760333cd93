/**
 * POST /v1/datasets/{id}/items/upload (uploadDatasetItems): NDJSON, one item
 * per line, streamed straight into the staging use case
 * (domain/datasets/dataset-staging.service.ts), which never holds the body in
 * memory nor a connection while the client sends. A plain Fastify route
 * because tRPC procedures take parsed JSON inputs.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Container } from '../../server/container.ts';
import { DomainError } from '../../domain/shared/errors.ts';
import { authorize, sendError, uuidParam } from '../../server/plain-route.ts';
import { toDatasetVersionDto } from '../../domain/datasets/dataset.mapper.ts';
import { uploadDatasetItems } from '../../domain/datasets/dataset-staging.service.ts';

export const UPLOAD_PATH = '/v1/datasets/:id/items/upload';
export const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/ndjson'];
const WRONG_TYPE = 'body must be NDJSON, one item per line, sent with Content-Type: application/x-ndjson';
// server/http.ts sizes the upload's body guards by the staging batch.
export { BATCH_BYTES } from '../../domain/datasets/dataset-staging.service.ts';

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
        return sendError(req, reply, err, 'upload');
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
  const version = await uploadDatasetItems(em, principal.tenantId, datasetId, req.body as Readable, container.env, req.log);
  req.log.info({ datasetId, version: version.version, items: version.item_count }, 'dataset upload stored');
  return reply.status(201).send(toDatasetVersionDto(version));
}
