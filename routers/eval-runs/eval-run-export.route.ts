/**
 * GET /v1/eval-runs/{id}/items/export?format=jsonl|csv[&status=]: every
 * result of a run with its item, in item order, streamed. A plain Fastify
 * route because trpc-to-openapi answers one JSON body. Memory stays one page
 * whatever the run's size: a page is read, released, written, and the next is
 * read only once the client has taken the last (a client that stops reading
 * for EXPORT_DRAIN_TIMEOUT_MS is cut). Errors before the first byte are the
 * usual `{ "error" }` answers; a failure mid-stream can only cut the stream,
 * so a complete JSONL export ends with a newline and a CSV one with its last
 * record.
 */
import { once } from 'node:events';
import { stringify } from 'csv-stringify/sync';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ITEM_STATUSES, type ItemStatus } from '../../entities/index.ts';
import { toRunItemDto } from '../../domain/eval-runs/eval-run.mapper.ts';
import { exportRunItems, type RunItemRow } from '../../domain/eval-runs/eval-run.service.ts';
import { DomainError, RateLimitedError } from '../../domain/shared/errors.ts';
import type { Container } from '../../server/container.ts';
import { authorize, sendError, uuidParam } from '../../server/plain-route.ts';

export const EXPORT_PATH = '/v1/eval-runs/:id/items/export';
const PAGE_LIMIT = 1_000;
const EXPORT_DRAIN_TIMEOUT_MS = 60_000;
/** Concurrent exports per tenant and process: each holds a socket and reads page after page. */
const MAX_EXPORTS_PER_TENANT = 4;

const CSV_COLUMNS = [
  'item_id', 'status', 'score', 'passed', 'reason', 'error', 'attempts', 'latency_ms',
  'prompt_tokens', 'completion_tokens', 'cost_usd', 'input', 'output', 'expected_output',
  // what the run's target generated (empty for runs over the stored outputs)
  'sample_output', 'sample_error', 'sample_cached', 'sample_attempts',
] as const;
const JSON_CELLS = new Set(['input', 'output', 'expected_output', 'sample_output']);
const CSV_HEADER = stringify([[...CSV_COLUMNS]], { record_delimiter: '\r\n' });

const open = new Map<string, number>();

export async function registerEvalRunExport(app: FastifyInstance, container: Container): Promise<void> {
  await app.register(async (scope) => {
    scope.get<{ Params: { id: string }; Querystring: Record<string, string | string[] | undefined> }>(EXPORT_PATH, async (req, reply) => serve(container, req, reply));
  });
}

function queryValue(q: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = q[name];
  if (Array.isArray(v)) throw new DomainError('BAD_REQUEST', `invalid input: ${name}: give it once`);
  return v;
}

async function serve(
  container: Container,
  req: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string | string[] | undefined> }>,
  reply: FastifyReply,
) {
  let tenantId: string;
  let pages: AsyncGenerator<RunItemRow[], void>;
  let first: IteratorResult<RunItemRow[], void>;
  let format: 'jsonl' | 'csv';
  try {
    const em = container.orm.em.fork();
    const principal = await authorize(container, em, req, reply, 'read');
    const runId = uuidParam(req.params.id);
    const f = queryValue(req.query, 'format') ?? 'jsonl';
    if (f !== 'jsonl' && f !== 'csv') throw new DomainError('BAD_REQUEST', 'invalid input: format: must be jsonl or csv');
    format = f;
    const status = queryValue(req.query, 'status');
    if (status !== undefined && !(ITEM_STATUSES as readonly string[]).includes(status)) {
      throw new DomainError('BAD_REQUEST', `invalid input: status: must be one of ${ITEM_STATUSES.join(', ')}`);
    }
    tenantId = principal.tenantId;
    if ((open.get(tenantId) ?? 0) >= MAX_EXPORTS_PER_TENANT) {
      throw new RateLimitedError(`this organization already has ${MAX_EXPORTS_PER_TENANT} exports in progress; wait for one to finish`, 5);
    }
    pages = exportRunItems({ em, tenantId }, runId, status as ItemStatus | undefined, PAGE_LIMIT, container.env.MAX_PAGE_BYTES);
    first = await pages.next();
  } catch (err) {
    return sendError(req, reply, err, 'run export');
  }
  open.set(tenantId, (open.get(tenantId) ?? 0) + 1);
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
    'content-disposition': `attachment; filename="run-${req.params.id}.${format}"`,
    'cache-control': 'no-store',
  });
  const client = new AbortController();
  raw.on('close', () => client.abort());
  try {
    if (format === 'csv') await write(raw, CSV_HEADER, client.signal);
    for (let page = first; !page.done; page = await pages.next()) {
      if (client.signal.aborted) break;
      await write(raw, format === 'csv' ? csvRecords(page.value) : jsonLines(page.value), client.signal);
    }
    raw.end();
  } catch (err) {
    req.log.warn({ err: (err as Error).message }, 'run export cut');
    raw.destroy();
  } finally {
    await pages.return(undefined);
    const n = (open.get(tenantId) ?? 1) - 1;
    if (n > 0) open.set(tenantId, n);
    else open.delete(tenantId);
  }
}

const jsonLines = (rows: RunItemRow[]) => rows.map((r) => `${JSON.stringify(toRunItemDto(r))}\n`).join('');

/** RFC 4180 records; the item's JSON values are JSON text in their cells. */
function csvRecords(rows: RunItemRow[]): string {
  return stringify(
    rows.map((r) => {
      const dto = toRunItemDto(r);
      const o: Record<string, unknown> = {
        ...dto,
        sample_output: dto.sample?.output ?? null,
        sample_error: dto.sample?.error ?? null,
        sample_cached: dto.sample?.cached ?? null,
        sample_attempts: dto.sample?.attempts ?? null,
      };
      return CSV_COLUMNS.map((c) => (JSON_CELLS.has(c) ? JSON.stringify(o[c]) : o[c] === null || o[c] === undefined ? '' : String(o[c])));
    }),
    { record_delimiter: '\r\n' },
  );
}

/** Writes, then waits for the client to take it (bounded: a client that stalls is cut). */
async function write(raw: NodeJS.WritableStream & { writableNeedDrain?: boolean }, text: string, signal: AbortSignal): Promise<void> {
  if (raw.write(text)) return;
  await once(raw, 'drain', { signal: AbortSignal.any([signal, AbortSignal.timeout(EXPORT_DRAIN_TIMEOUT_MS)]) });
}
