/**
 * GET /v1/eval-runs/{id}/items/export?format=jsonl|csv[&status=]: every
 * result of a run with its item, in item order, streamed; and
 * GET /v1/eval-runs/compare/export?base=&head=&format=: every item both runs
 * scored, side by side, the same way. A plain Fastify
 * route because trpc-to-openapi answers one JSON body. Memory stays one page
 * whatever the run's size: a page is read, released, written, and the next is
 * read only once the client has taken the last (a client that stops reading
 * for env.EXPORT_DRAIN_TIMEOUT_MS is cut: its socket destroyed, its slot
 * freed, the cut logged). Errors before the first byte are the usual
 * `{ "error" }` answers; a failure mid-stream can only cut the stream, so a
 * complete JSONL export ends with a newline and a CSV one with its last
 * record.
 */
import { once } from 'node:events';
import { stringify } from 'csv-stringify/sync';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ITEM_STATUSES, type ItemStatus } from '../../entities/index.ts';
import { toRunItemDto } from '../../domain/eval-runs/eval-run.mapper.ts';
import { compareItem, exportCompareRows, exportRunItems, type RunItemRow } from '../../domain/eval-runs/eval-run.service.ts';
import { DomainError, RateLimitedError } from '../../domain/shared/errors.ts';
import { readsFromReplica } from '../../domain/shared/sql.ts';
import type { Container } from '../../server/container.ts';
import { authorize, sendError, uuidParam } from '../../server/plain-route.ts';

export const EXPORT_PATH = '/v1/eval-runs/:id/items/export';
export const COMPARE_EXPORT_PATH = '/v1/eval-runs/compare/export';
const COMPARE_COLUMNS = ['item_id', 'base_status', 'head_status', 'base_score', 'head_score', 'delta', 'change'] as const;
const COMPARE_CSV_HEADER = stringify([[...COMPARE_COLUMNS]], { record_delimiter: '\r\n' });
const PAGE_LIMIT = 1_000;
/** Concurrent exports per tenant and process: each holds a socket and reads page after page. */
const MAX_EXPORTS_PER_TENANT = 4;

const CSV_COLUMNS = [
  'item_id', 'status', 'score', 'passed', 'reason', 'error', 'attempts', 'latency_ms',
  'prompt_tokens', 'completion_tokens', 'cost_usd', 'input', 'output', 'expected_output',
  // what the run's target generated (empty for runs over the stored outputs)
  'sample_output', 'sample_error', 'sample_cached', 'sample_attempts',
  // each criterion's outcome as JSON (empty for one evaluator)
  'scores',
] as const;
const JSON_CELLS = new Set(['input', 'output', 'expected_output', 'sample_output', 'scores']);
const CSV_HEADER = stringify([[...CSV_COLUMNS]], { record_delimiter: '\r\n' });

const open = new Map<string, number>();

export async function registerEvalRunExport(app: FastifyInstance, container: Container): Promise<void> {
  await app.register(async (scope) => {
    scope.get<{ Params: { id: string }; Querystring: Record<string, string | string[] | undefined> }>(EXPORT_PATH, async (req, reply) => serve(container, req, reply));
    scope.get<{ Querystring: Record<string, string | string[] | undefined> }>(COMPARE_EXPORT_PATH, async (req, reply) => serveCompare(container, req, reply));
  });
}

function queryValue(q: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = q[name];
  if (Array.isArray(v)) throw new DomainError('BAD_REQUEST', `invalid input: ${name}: give it once`);
  return v;
}

/** What one export streams: its pages already rendered as text, its file name, and its CSV header. */
interface ExportSource {
  pages: AsyncGenerator<string, void>;
  filename: string;
  header: string | null;
}

function parseFormat(q: Record<string, string | string[] | undefined>): 'jsonl' | 'csv' {
  const f = queryValue(q, 'format') ?? 'jsonl';
  if (f !== 'jsonl' && f !== 'csv') throw new DomainError('BAD_REQUEST', 'invalid input: format: must be jsonl or csv');
  return f;
}

async function* rendered<R>(pages: AsyncGenerator<R[], void>, render: (rows: R[]) => string): AsyncGenerator<string, void> {
  try {
    for await (const page of pages) yield render(page);
  } finally {
    await pages.return(undefined);
  }
}

async function serve(
  container: Container,
  req: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string | string[] | undefined> }>,
  reply: FastifyReply,
) {
  return stream(container, req, reply, 'run export', (em, tenantId) => {
    const runId = uuidParam(req.params.id);
    const format = parseFormat(req.query);
    const status = queryValue(req.query, 'status');
    if (status !== undefined && !(ITEM_STATUSES as readonly string[]).includes(status)) {
      throw new DomainError('BAD_REQUEST', `invalid input: status: must be one of ${ITEM_STATUSES.join(', ')}`);
    }
    const pages = exportRunItems({ em, tenantId }, runId, status as ItemStatus | undefined, PAGE_LIMIT, container.env.MAX_PAGE_BYTES);
    return { format, source: { pages: rendered(pages, format === 'csv' ? csvRecords : jsonLines), filename: `run-${runId}`, header: format === 'csv' ? CSV_HEADER : null } };
  });
}

async function serveCompare(container: Container, req: FastifyRequest<{ Querystring: Record<string, string | string[] | undefined> }>, reply: FastifyReply) {
  return stream(container, req, reply, 'compare export', (em, tenantId) => {
    const base = uuidParam(queryValue(req.query, 'base') ?? '', 'base');
    const head = uuidParam(queryValue(req.query, 'head') ?? '', 'head');
    const format = parseFormat(req.query);
    const pages = exportCompareRows({ em, tenantId }, base, head, PAGE_LIMIT);
    const render = (rows: Parameters<typeof compareItem>[0][]) => {
      const items = rows.map(compareItem);
      return format === 'csv'
        ? stringify(items.map((r) => COMPARE_COLUMNS.map((c) => (r[c] === null || r[c] === undefined ? '' : String(r[c])))), { record_delimiter: '\r\n' })
        : items.map((r) => `${JSON.stringify(r)}\n`).join('');
    };
    return { format, source: { pages: rendered(pages, render), filename: `compare-${base}-${head}`, header: format === 'csv' ? COMPARE_CSV_HEADER : null } };
  });
}

/**
 * Authorizes, checks the tenant's share of exports, reads the first page (so
 * that a refusal is an ordinary { error } answer), then streams page after
 * page, each written only once the client took the last.
 */
async function stream(
  container: Container,
  req: FastifyRequest,
  reply: FastifyReply,
  what: string,
  open_: (em: ReturnType<Container['orm']['em']['fork']>, tenantId: string) => { format: 'jsonl' | 'csv'; source: ExportSource },
) {
  let tenantId: string;
  let source: ExportSource;
  let format: 'jsonl' | 'csv';
  let first: IteratorResult<string, void>;
  try {
    const em = container.orm.em.fork();
    const principal = await authorize(container, em, req, reply, 'read');
    tenantId = principal.tenantId;
    if ((open.get(tenantId) ?? 0) >= MAX_EXPORTS_PER_TENANT) {
      throw new RateLimitedError(`this organization already has ${MAX_EXPORTS_PER_TENANT} exports in progress; wait for one to finish`, 5);
    }
    ({ format, source } = open_(readsFromReplica(em), tenantId));
    first = await source.pages.next();
  } catch (err) {
    return sendError(req, reply, err, what);
  }
  open.set(tenantId, (open.get(tenantId) ?? 0) + 1);
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
    'content-disposition': `attachment; filename="${source.filename}.${format}"`,
    'cache-control': 'no-store',
  });
  const client = new AbortController();
  raw.on('close', () => client.abort());
  const drainMs = container.env.EXPORT_DRAIN_TIMEOUT_MS;
  try {
    if (source.header !== null) await write(raw, source.header, client.signal, drainMs);
    for (let page = first; !page.done; page = await source.pages.next()) {
      if (client.signal.aborted) break;
      await write(raw, page.value, client.signal, drainMs);
    }
    raw.end();
  } catch (err) {
    // the client's own close aborts `client`; anything else is the drain deadline or a failed read
    const reason = client.signal.aborted ? 'client closed' : (err as Error).name === 'AbortError' ? 'client stopped reading' : 'read failed';
    req.log.warn({ err: (err as Error).message, reason, drainTimeoutMs: drainMs }, `${what} cut`);
    raw.destroy();
  } finally {
    await source.pages.return(undefined);
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
async function write(raw: NodeJS.WritableStream & { writableNeedDrain?: boolean }, text: string, signal: AbortSignal, drainMs: number): Promise<void> {
  if (raw.write(text)) return;
  await once(raw, 'drain', { signal: AbortSignal.any([signal, AbortSignal.timeout(drainMs)]) });
}
