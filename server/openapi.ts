/**
 * The OpenAPI document, generated from the router by trpc-to-openapi and then
 * corrected where the generator cannot follow the contract: success statuses
 * other than 200, `{ "error" }` bodies through components.responses, and
 * request bodies named as in the contract.
 */
import { generateOpenApiDocument, type OpenAPIObject } from 'trpc-to-openapi';
import { appRouter, procedures } from '../routers/_app.ts';
import { STANDARD_ERRORS } from '../routers/meta.ts';
import { errorResponseSchema, scheduleEvalRunRequest } from '../domain/eval-runs/eval-run.schema.ts';

/** components.responses names, as the contract names 404 `NotFound` (a wrong Content-Type answers 400, never 415). */
const ERROR_RESPONSES: Record<number, { name: string; description: string }> = {
  400: { name: 'BadRequest', description: 'Malformed id, missing or ill-typed field, or a body that is not JSON' },
  401: { name: 'Unauthorized', description: 'Missing, unknown or revoked credentials' },
  403: { name: 'Forbidden', description: 'The caller\'s role may not do this' },
  404: { name: 'NotFound', description: 'Resource not found' },
  409: { name: 'Conflict', description: 'The request conflicts with the current state' },
  413: { name: 'PayloadTooLarge', description: 'Request body too large' },
  422: { name: 'UnprocessableEntity', description: 'The request is well-formed but cannot be processed' },
  429: { name: 'TooManyRequests', description: 'Rate limit exceeded; see Retry-After' },
  503: { name: 'ServiceUnavailable', description: 'A dependency is unavailable; retry shortly' },
};

type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

export function buildOpenApiDocument(): OpenAPIObject {
  const doc = generateOpenApiDocument(appRouter, {
    title: 'evalgate API',
    description:
      'Schedules and executes LLM eval runs. Implements the TruLayer API `scheduleEvalRun` contract.\n\n' +
      'Authentication: `Authorization: Bearer tl_…` (API key) or a session JWT. Errors are always `{ "error": "…" }`.',
    version: '0.1.0',
    openApiVersion: '3.1.0',
    baseUrl: 'http://localhost:8080',
    securitySchemes: {
      BearerAuth: { type: 'http', scheme: 'bearer', description: 'SDK API key (`tl_...`) or Clerk session JWT' },
    },
    defs: { ErrorResponse: errorResponseSchema, ScheduleEvalRunRequest: scheduleEvalRunRequest },
  });

  const usedResponses = new Set<number>();
  const requestSchemas = new Set<string>();
  /** `responses` entries pointing at the shared `{ "error" }` response of each status. */
  const errorResponses = (statuses: readonly number[]) =>
    Object.fromEntries(
      statuses.map((n) => {
        const shared = ERROR_RESPONSES[n];
        if (!shared) throw new Error(`openapi: no shared response for status ${n}`);
        usedResponses.add(n);
        return [String(n), { $ref: `#/components/responses/${shared.name}` }];
      }),
    );
  for (const { meta } of procedures) {
    if (!meta?.openapi) continue;
    const method = meta.openapi.method.toLowerCase() as HttpMethod;
    const op = doc.paths?.[meta.openapi.path]?.[method];
    if (!op?.responses) throw new Error(`openapi: no operation for ${method} ${meta.openapi.path}`);
    const status = meta.successStatus ?? 200;
    if (status !== 200) {
      op.responses[String(status)] = status === 204 ? { description: op.responses['200']?.description ?? 'No content' } : op.responses['200'];
      delete op.responses['200'];
    }
    // Every REST procedure is role-gated (routers/meta.ts): a meta written by hand must not forget a standard status.
    const missing = STANDARD_ERRORS.filter((n) => !op.responses?.[String(n)]);
    if (missing.length > 0) throw new Error(`openapi: ${method} ${meta.openapi.path} does not list ${missing.join(', ')}`);
    Object.assign(op.responses, errorResponses(Object.keys(op.responses).map(Number).filter((n) => n >= 400)));
    if (meta.requestSchemaId && op.requestBody && 'content' in op.requestBody) {
      const json = op.requestBody.content['application/json'];
      if (json) json.schema = { $ref: `#/components/schemas/${meta.requestSchemaId}` };
      requestSchemas.add(meta.requestSchemaId);
    }
  }

  // The NDJSON upload streams, so it is a plain Fastify route: describe it by hand. A write like the
  // procedures (server/plain-route.ts), plus a missing dataset and a body or line too large.
  const uploadErrors = [...STANDARD_ERRORS, 404, 413];
  doc.paths ??= {};
  doc.paths['/v1/datasets/{id}/items/upload'] = {
    post: {
      operationId: 'uploadDatasetItems',
      tags: ['datasets'],
      summary: 'Upload items as NDJSON: a new version holding the previous items plus these',
      description:
        'One `NewDatasetItem` JSON object per line (Content-Type: application/x-ndjson). The body is streamed and ' +
        'stored in one transaction: if any line is bad, nothing is stored and the 400 names the bad lines by number. ' +
        'Each line may be up to MAX_ITEM_BYTES (1 MiB).',
      security: [{ BearerAuth: [] }],
      parameters: [{ in: 'path', name: 'id', required: true, description: 'Dataset id', schema: { type: 'string', format: 'uuid' } }],
      requestBody: {
        required: true,
        content: { 'application/x-ndjson': { schema: { type: 'string', description: 'NDJSON: one NewDatasetItem per line' } } },
      },
      responses: {
        '201': { description: 'Version created', content: { 'application/json': { schema: { $ref: '#/components/schemas/DatasetVersion' } } } },
        ...errorResponses(uploadErrors),
      },
    },
  };

  // Progress as Server-Sent Events streams too (routers/eval-runs/eval-run-events.route.ts).
  // Every role may read, so no 403.
  const eventsErrors = [...STANDARD_ERRORS.filter((n) => n !== 403), 404];
  doc.paths['/v1/eval-runs/{id}/events'] = {
    get: {
      operationId: 'watchEvalRunEvents',
      tags: ['eval-runs'],
      summary: 'Follow a run as Server-Sent Events until it ends',
      description:
        'An `event: progress` with the `EvalRun` as `data` on connect and whenever the run changes, then one `event: done` ' +
        'with the completed or failed run, and the stream ends. `: ping` comments every 15 s. The same stream is the tRPC ' +
        'subscription `watchEvalRun` (httpSubscriptionLink). Any role may watch.',
      security: [{ BearerAuth: [] }],
      parameters: [{ in: 'path', name: 'id', required: true, description: 'Eval run id', schema: { type: 'string', format: 'uuid' } }],
      responses: {
        '200': {
          description: 'The event stream',
          content: {
            'text/event-stream': {
              schema: { type: 'string', description: 'SSE: `event: progress|done` lines, each followed by `data: <EvalRun as JSON>`' },
            },
          },
        },
        ...errorResponses(eventsErrors),
      },
    },
  };

  // The export streams as well (routers/eval-runs/eval-run-export.route.ts).
  doc.paths['/v1/eval-runs/{id}/items/export'] = {
    get: {
      operationId: 'exportEvalRunItems',
      tags: ['eval-runs'],
      summary: 'Export a run\'s results with their items, streamed, as JSON Lines or CSV',
      description:
        'Every result in item order, the fields of `EvalRunItem`: one JSON object per line (`format=jsonl`, the default), or ' +
        'RFC 4180 CSV with a header row and the item\'s input, output and expected_output as JSON text in their cells. ' +
        'Memory on the server is one page whatever the run\'s size. Any role; at most 4 exports per tenant at once (429).',
      security: [{ BearerAuth: [] }],
      parameters: [
        { in: 'path', name: 'id', required: true, description: 'Eval run id', schema: { type: 'string', format: 'uuid' } },
        { in: 'query', name: 'format', required: false, schema: { type: 'string', enum: ['jsonl', 'csv'], default: 'jsonl' } },
        { in: 'query', name: 'status', required: false, description: 'Only items with this result', schema: { type: 'string', enum: ['passed', 'failed', 'error'] } },
      ],
      responses: {
        '200': {
          description: 'The export',
          content: {
            'application/x-ndjson': { schema: { type: 'string', description: 'One EvalRunItem as JSON per line' } },
            'text/csv': { schema: { type: 'string', description: 'A header row, then one record per result' } },
          },
        },
        ...errorResponses([...STANDARD_ERRORS, 404]),
      },
    },
  };

  doc.paths['/v1/eval-runs/compare/export'] = {
    get: {
      operationId: 'exportEvalRunComparison',
      tags: ['eval-runs'],
      summary: 'Export two runs compared item by item, streamed, as JSON Lines or CSV',
      description:
        'Every item both runs scored, in item order: item_id, base_status, head_status, base_score, head_score, delta, change ' +
        '(the rows of compareEvalRuns, without paging). Memory on the server is one page whatever the runs\' size. Any role; ' +
        'counts against the same 4 exports per tenant (429).',
      security: [{ BearerAuth: [] }],
      parameters: [
        { in: 'query', name: 'base', required: true, description: 'The run to compare against', schema: { type: 'string', format: 'uuid' } },
        { in: 'query', name: 'head', required: true, description: 'The run compared', schema: { type: 'string', format: 'uuid' } },
        { in: 'query', name: 'format', required: false, schema: { type: 'string', enum: ['jsonl', 'csv'], default: 'jsonl' } },
      ],
      responses: {
        '200': {
          description: 'The export',
          content: {
            'application/x-ndjson': { schema: { type: 'string', description: 'One compared item as JSON per line' } },
            'text/csv': { schema: { type: 'string', description: 'A header row, then one record per item' } },
          },
        },
        ...errorResponses([...STANDARD_ERRORS, 404]),
      },
    },
  };

  // Relative, so /docs "Try it out" calls whichever origin served the page (and the CSP's connect-src 'self' allows it).
  doc.servers = [{ url: '/', description: 'The origin serving this document' }];
  doc.components ??= {};
  const schemas = (doc.components.schemas ??= {});
  for (const name of Object.keys(schemas)) if (name.startsWith('error.')) delete schemas[name];
  // Request bodies may carry more fields than we read (they are ignored), so do not promise otherwise.
  for (const name of requestSchemas) delete (schemas[name] as { additionalProperties?: unknown } | undefined)?.additionalProperties;
  doc.components.responses = Object.fromEntries(
    [...usedResponses]
      .sort((a, b) => a - b)
      .map((n) => {
        const r = ERROR_RESPONSES[n] as { name: string; description: string };
        return [
          r.name,
          { description: r.description, content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponse' } } } },
        ];
      }),
  );
  simplifySchemas(doc);
  return doc;
}

const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Drops what zod adds but a reader or an SDK generator gains nothing from:
 * the regexes behind `format: uuid` / `date-time` and the ±2^53 bounds of
 * every integer. The formats themselves stay.
 */
function simplifySchemas(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) simplifySchemas(n);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const o = node as Record<string, unknown>;
  if ((o.format === 'uuid' || o.format === 'date-time') && typeof o.pattern === 'string') delete o.pattern;
  if (o.type === 'integer') {
    if (o.minimum === -SAFE) delete o.minimum;
    if (o.maximum === SAFE) delete o.maximum;
  }
  for (const v of Object.values(o)) simplifySchemas(v);
}
