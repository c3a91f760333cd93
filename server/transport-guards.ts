/**
 * Bounds on what a client can make one API process hold, whatever the
 * transport (REST, tRPC, the plain routes): time (slow headers, stalled or
 * trickling bodies answer 408 and are cut), bytes of bodies in flight (a
 * budget for requests not yet authenticated, one for all, one per tenant:
 * 503/429 with Retry-After before a byte is read), and for /trpc the body
 * checks REST gets from its JSON parser (nesting depth, `__proto__` and
 * `constructor` keys, batch size), answered in tRPC's error shape.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TRPC_ERROR_CODES_BY_KEY, type TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import { authenticate } from './auth.ts';
import type { Container } from './container.ts';
import { preauthenticated } from './context.ts';
import type { Env } from './env.ts';
import { errorBody, errorMessage, errorStatus, toTRPCError } from './errors.ts';
import { DomainError } from '../domain/shared/errors.ts';

/** Deepest JSON nesting a request body (or a tRPC `?input=`) may have. */
export const MAX_JSON_DEPTH = 128;

/**
 * While its credential is being checked, a request's body is not read, but
 * Node's parser may already have taken one socket read (64 KiB) of it: that
 * much of the unauthenticated budget is held per request meanwhile.
 */
const PREAUTH_HOLD_BYTES = 64 * 1024;

/**
 * One pass over JSON text, no parse, strings skipped: whether it nests
 * arrays/objects deeper than `maxDepth`, and how many values it holds
 * (containers, scalars and object keys: what a parse allocates). The count is
 * what a parse will cost: `[{},{},…]` is 3 bytes of text but about 56 bytes
 * of heap per element.
 */
export function scanJson(text: string, maxDepth: number): { tooDeep: boolean; values: number } {
  let depth = 0;
  let values = 0;
  let inString = false;
  let expectValue = true; // at the start, and after [ { , :
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 32 || c === 9 || c === 10 || c === 13) {
      continue;
    } else if (c === 91 || c === 123) {
      values++;
      expectValue = true;
      if (++depth > maxDepth) return { tooDeep: true, values };
    } else if (c === 93 || c === 125) {
      depth--;
      expectValue = false;
    } else if (c === 44 || c === 58) {
      expectValue = true;
    } else {
      // the first character of a string, number, true, false or null
      if (expectValue) values++;
      expectValue = false;
      if (c === 34) inString = true;
    }
  }
  return { tooDeep: false, values };
}

/**
 * Heap charged per JSON value of a body about to be parsed (measured on Node
 * 20: 56 bytes per empty object, 8 per small integer in an array, ~32 per
 * member of a small object). With MAX_JSON_VALUES it bounds what one parse
 * can allocate, whatever the body's shape.
 */
export const JSON_VALUE_HEAP_BYTES = 64;

/**
 * Whether JSON text has a `__proto__` key or a `constructor.prototype` (what
 * Fastify's parser refuses on REST). The full scan runs only when the text
 * could hold one (any escape could spell the key), so most bodies pay one
 * substring search.
 */
export function hasPrototypeKeys(text: string): boolean {
  if (!text.includes('__proto__') && !text.includes('constructor') && !text.includes('\\u')) return false;
  try {
    sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
    return false;
  } catch (err) {
    return err instanceof SyntaxError && /prototype/i.test(err.message);
  }
}

/** Bytes held, up to a cap; `take` refuses what would go over it. */
class ByteBudget {
  used = 0;
  constructor(readonly cap: number) {}
  take(n: number): boolean {
    if (this.used + n > this.cap) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** The body budgets of one process (exposed for tests and /metrics-like reads). */
export class BodyBudgets {
  readonly unauthenticated: ByteBudget;
  readonly all: ByteBudget;
  private readonly perTenant = new Map<string, number>();
  constructor(private readonly env: Env) {
    this.unauthenticated = new ByteBudget(env.UNAUTH_BODY_BUDGET_BYTES);
    this.all = new ByteBudget(env.BODY_BUDGET_BYTES);
  }
  /** Reserves `n` bytes for a tenant's body: 'tenant' or 'process' when a budget is spent. */
  takeForTenant(tenantId: string, n: number): 'ok' | 'tenant' | 'process' {
    const held = this.perTenant.get(tenantId) ?? 0;
    if (held + n > this.env.TENANT_BODY_BUDGET_BYTES) return 'tenant';
    if (!this.all.take(n)) return 'process';
    this.perTenant.set(tenantId, held + n);
    return 'ok';
  }
  giveForTenant(tenantId: string, n: number): void {
    this.all.give(n);
    const left = (this.perTenant.get(tenantId) ?? 0) - n;
    if (left > 0) this.perTenant.set(tenantId, left);
    else this.perTenant.delete(tenantId);
  }
  tenantHeld(tenantId: string): number {
    return this.perTenant.get(tenantId) ?? 0;
  }
}

/** What one request's body holds of the budgets (its declared bytes, plus what its parse was charged). */
interface BodyHold {
  budgets: BodyBudgets;
  env: Env;
  /** null: charged to the unauthenticated budget. */
  tenantId: string | null;
  bytes: number;
}
const holds = new WeakMap<IncomingMessage, BodyHold>();

/**
 * Charges the parse of a body of `values` JSON values (scanJson) to the
 * request's budgets before it runs: over MAX_JSON_VALUES (or what the budgets
 * could ever hold) it is 413; when the
 * heap estimate outgrows what the body already holds and the budget has no
 * room for the rest, 429 (the tenant's) or 503 with Retry-After. Returns the
 * refusal, or null when the parse may run.
 */
export function chargeJsonParse(raw: IncomingMessage, values: number, env: Env): JsonRefusal | null {
  const fits = Math.floor(Math.min(env.TENANT_BODY_BUDGET_BYTES, env.BODY_BUDGET_BYTES) / JSON_VALUE_HEAP_BYTES);
  if (values > Math.min(env.MAX_JSON_VALUES, fits)) {
    const cap = env.MAX_JSON_VALUES <= fits ? `MAX_JSON_VALUES (${env.MAX_JSON_VALUES})` : `${fits}, what the body budgets can hold at ${JSON_VALUE_HEAP_BYTES} bytes a value`;
    return { code: 'PAYLOAD_TOO_LARGE', status: 413, message: `request body holds ${values} JSON values, more than ${cap}` };
  }
  const hold = holds.get(raw);
  if (!hold) return null; // no declared body (a GET's ?input=, bounded by the header size)
  const extra = values * JSON_VALUE_HEAP_BYTES - hold.bytes;
  if (extra <= 0) return null;
  const busy = { code: 'SERVICE_UNAVAILABLE' as const, status: 503, message: 'too many request bodies in flight, retry shortly', retryAfter: 1 };
  if (hold.tenantId === null) {
    if (!hold.budgets.unauthenticated.take(extra)) return busy;
  } else {
    const taken = hold.budgets.takeForTenant(hold.tenantId, extra);
    if (taken === 'tenant') return { code: 'TOO_MANY_REQUESTS', status: 429, message: 'too many request bodies of this tenant in flight, retry shortly', retryAfter: 1 };
    if (taken === 'process') return busy;
  }
  hold.bytes += extra;
  return null;
}

/** A refusal of a JSON text, in the terms both transports answer with. */
export interface JsonRefusal {
  code: TRPC_ERROR_CODE_KEY;
  status: number;
  message: string;
  retryAfter?: number;
}

/**
 * What REST's JSON parser and tRPC's guard both check before a parse: the
 * nesting depth (400), then the values' heap charge (chargeJsonParse).
 * `what` names the text in the message ("body" on REST, "input" on tRPC).
 */
export function refuseJsonText(raw: IncomingMessage, text: string, env: Env, what: 'body' | 'input'): JsonRefusal | null {
  const scan = scanJson(text, MAX_JSON_DEPTH);
  if (scan.tooDeep) return { code: 'BAD_REQUEST', status: 400, message: `request ${what} is nested deeper than ${MAX_JSON_DEPTH} levels` };
  return chargeJsonParse(raw, scan.values, env);
}

/** The budgets of each app (tests read how much is held). */
export const bodyBudgetsOf = new WeakMap<FastifyInstance, BodyBudgets>();

/** Declared body size: a Content-Length, `chunked` (no length known), or 0 for no body. */
function declaredBody(raw: IncomingMessage): number | 'chunked' {
  if (raw.headers['transfer-encoding'] !== undefined) return 'chunked';
  const n = Number(raw.headers['content-length'] ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** Paths whose every route wants a credential (the API); the rest (health, docs, board) check their own. */
const needsCredential = (url: string) => url.startsWith('/v1/') || url.startsWith('/trpc/');
const isTrpc = (url: string) => url.startsWith('/trpc/');

/** The procedure paths of a /trpc URL (`/trpc/a,b?batch=1` → [a, b]). */
function trpcPaths(req: FastifyRequest): { paths: string[]; batch: boolean; search: URLSearchParams } {
  const url = new URL(req.url, 'http://local');
  let path = url.pathname.slice('/trpc/'.length);
  try {
    path = decodeURIComponent(path);
  } catch {
    // a malformed escape: the router answers it; the raw path still names the calls
  }
  const paths = path.split(',');
  return { paths, batch: url.searchParams.get('batch') === '1', search: url.searchParams };
}

/**
 * An error in the shape the tRPC client reads (one per call of a batch): the
 * procedures' own errors look the same, so a typed client sees a TRPCClientError.
 */
export function sendTrpcError(req: FastifyRequest, reply: FastifyReply, code: TRPC_ERROR_CODE_KEY, status: number, message: string): FastifyReply {
  const { paths, batch } = trpcPaths(req);
  const one = (path: string) => ({ error: { message, code: TRPC_ERROR_CODES_BY_KEY[code], data: { code, httpStatus: status, path } } });
  return reply.status(status).send(batch ? paths.map(one) : one(paths[0] ?? ''));
}

const TRPC_CODE_BY_STATUS: Record<number, TRPC_ERROR_CODE_KEY> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  408: 'TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  429: 'TOO_MANY_REQUESTS',
  503: 'SERVICE_UNAVAILABLE',
};

/** Fastify's own errors (body too large, cut by a timer) on a /trpc route: tRPC's shape, so its client can read them. */
export function sendTransportError(req: FastifyRequest, reply: FastifyReply, status: number, message: string): FastifyReply {
  if (!isTrpc(req.url)) return reply.status(status).send(errorBody(message));
  return sendTrpcError(req, reply, TRPC_CODE_BY_STATUS[status] ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST'), status, message);
}

/** `{ "error" }` on REST, tRPC's shape on /trpc; Retry-After for 429 and 503. */
function reject(req: FastifyRequest, reply: FastifyReply, code: TRPC_ERROR_CODE_KEY, status: number, message: string, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
  // The body is left unread: the connection cannot carry another request after this answer.
  void reply.header('connection', 'close');
  if (isTrpc(req.url)) return sendTrpcError(req, reply, code, status, message);
  return reply.status(status).send(errorBody(message));
}

/**
 * Cuts a body that stalls: none of it for BODY_IDLE_TIMEOUT_MS, or (unless
 * `streamed`) not all of it within REQUEST_TIMEOUT_MS. The answer is 408 and
 * the socket is destroyed, which drops whatever the parser had buffered.
 */
function armBodyTimers(req: FastifyRequest, reply: FastifyReply, env: Env, streamed: boolean): void {
  const raw = req.raw;
  const socket = raw.socket as Socket | null;
  if (!socket) return;
  let settled = false;
  const settle = () => {
    settled = true;
    clearTimeout(total);
    raw.off('timeout', onIdle);
    // A socket timeout left armed would cut a slow handler; after the answer Node sets its keep-alive one.
    if (!reply.sent && !socket.destroyed) socket.setTimeout(0);
  };
  const cut = (message: string) => {
    if (settled) return;
    settle();
    req.log.info({ reason: message }, 'request body cut');
    void reply.header('connection', 'close');
    // Whoever reads the body (Fastify's parser, the upload's stream) fails with this error and answers it the
    // usual way (408 { error }), dropping what it had buffered; nobody reading yet: answer here.
    const err = Object.assign(new DomainError('TIMEOUT', message), { statusCode: 408 });
    if (!reply.sent && raw.listenerCount('error') > 0) raw.emit('error', err);
    else if (!reply.sent) void reply.status(408).send(errorBody(message));
    // Once answered the connection goes (Connection: close); one whose client does not read it goes anyway.
    if (reply.sent) socket.end();
    else reply.raw.once('finish', () => socket.end());
    setTimeout(() => socket.destroy(), 2_000).unref();
  };
  const onIdle = () => {
    if (settled) return;
    if (raw.complete) return settle();
    // Bytes already buffered and unread: the server is behind (a batch insert), not the client.
    if (raw.readableLength > 0) return void socket.setTimeout(env.BODY_IDLE_TIMEOUT_MS);
    cut(`request body stalled: no data for ${env.BODY_IDLE_TIMEOUT_MS} ms`);
  };
  const total = streamed
    ? undefined
    : setTimeout(() => {
        if (!raw.complete) cut(`request body did not arrive within ${env.REQUEST_TIMEOUT_MS} ms`);
      }, env.REQUEST_TIMEOUT_MS).unref();
  raw.on('timeout', onIdle);
  socket.setTimeout(env.BODY_IDLE_TIMEOUT_MS);
  raw.once('end', settle);
  reply.raw.once('close', () => {
    if (!settled) settle();
  });
}

/**
 * The body guards of every route: timers for declared bodies, the
 * credential checked before a byte of the body is read, and the budgets.
 * `streamedRoutes`: routes whose body is a long stream (idle timeout only), with the bytes such a route holds
 * at most while it streams (its batch; one item line more is added here): they are charged that, not the
 * declared length, since they never hold the body whole.
 */
export function registerBodyGuards(app: FastifyInstance, container: Container, streamedRoutes: ReadonlyMap<string, number>): BodyBudgets {
  const { env } = container;
  const budgets = new BodyBudgets(env);
  bodyBudgetsOf.set(app, budgets);
  app.addHook('onRequest', async (req, reply) => {
    const declared = declaredBody(req.raw);
    if (declared === 0) return;
    // Timed from when the body is to be read: while the credential is checked, nothing reads it.
    const streamedHold = streamedRoutes.get(req.routeOptions.url ?? '');
    const arm = () => armBodyTimers(req, reply, env, streamedHold !== undefined);
    const cap = streamedHold === undefined ? env.BODY_LIMIT_BYTES : Math.min(streamedHold + env.MAX_ITEM_BYTES, env.BODY_LIMIT_BYTES);
    const hold = Math.min(declared === 'chunked' ? cap : declared, cap);
    const busy = 'too many request bodies in flight, retry shortly';
    if (!needsCredential(req.url)) {
      // Health, docs, the board: no credential known here, so the body counts as unauthenticated throughout.
      if (!budgets.unauthenticated.take(hold)) return reject(req, reply, 'SERVICE_UNAVAILABLE', 503, busy, 1);
      const held: BodyHold = { budgets, env, tenantId: null, bytes: hold };
      holds.set(req.raw, held);
      reply.raw.once('close', () => budgets.unauthenticated.give(held.bytes));
      return arm();
    }
    const pending = Math.min(hold, PREAUTH_HOLD_BYTES);
    if (!budgets.unauthenticated.take(pending)) return reject(req, reply, 'SERVICE_UNAVAILABLE', 503, busy, 1);
    let principal;
    try {
      principal = await authenticate(req.headers.authorization, { em: container.orm.em.fork(), apiKeys: container.apiKeys, jwt: container.jwt });
    } catch (err) {
      const error = toTRPCError(err);
      const status = errorStatus(error);
      if (status >= 500 && error.code !== 'SERVICE_UNAVAILABLE') req.log.error({ err }, 'authentication failed');
      return reject(req, reply, error.code, status, errorMessage(error), error.code === 'SERVICE_UNAVAILABLE' ? 1 : undefined);
    } finally {
      budgets.unauthenticated.give(pending);
    }
    const taken = budgets.takeForTenant(principal.tenantId, hold);
    if (taken === 'tenant') return reject(req, reply, 'TOO_MANY_REQUESTS', 429, 'too many request bodies of this tenant in flight, retry shortly', 1);
    if (taken === 'process') return reject(req, reply, 'SERVICE_UNAVAILABLE', 503, busy, 1);
    const held: BodyHold = { budgets, env, tenantId: principal.tenantId, bytes: hold };
    holds.set(req.raw, held);
    reply.raw.once('close', () => budgets.giveForTenant(principal.tenantId, held.bytes));
    preauthenticated.set(req.raw, principal);
    arm();
  });
  return budgets;
}

/**
 * What REST's JSON parser checks, for /trpc (whose plugin hands tRPC the raw
 * text): JSON only, nesting depth, prototype keys, in the body and in a
 * GET's `?input=`; and a cap on the calls in one batch.
 */
export function registerTrpcGuards(scope: FastifyInstance, env: Env): void {
  scope.addHook('preHandler', async (req, reply) => {
    const { paths, batch, search } = trpcPaths(req);
    if (batch && paths.length > env.TRPC_MAX_BATCH) {
      return sendTrpcError(req, reply, 'BAD_REQUEST', 400, `a batch may hold at most ${env.TRPC_MAX_BATCH} calls, this one has ${paths.length}`);
    }
    let text: string | undefined;
    if (req.method === 'GET') text = search.get('input') ?? undefined;
    else if (typeof req.body === 'string') text = req.body;
    else if (req.body !== undefined && req.body !== null) {
      // multipart and other raw streams: no procedure takes them, and their size is not bounded here
      return sendTrpcError(req, reply, 'BAD_REQUEST', 400, 'request body must be JSON (Content-Type: application/json)');
    }
    if (text === undefined) return;
    const refused = refuseJsonText(req.raw, text, env, 'input');
    if (refused) {
      if (refused.retryAfter !== undefined) void reply.header('retry-after', String(refused.retryAfter));
      return sendTrpcError(req, reply, refused.code, refused.status, refused.message);
    }
    if (hasPrototypeKeys(text)) return sendTrpcError(req, reply, 'BAD_REQUEST', 400, 'request input may not have "__proto__" or "constructor.prototype" keys');
  });
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (headers
 * too slow, too large, malformed) answer `{ "error" }` too, then the socket
 * is closed.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, text, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'request headers did not arrive in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'request headers are too large']
        : [400, 'Bad Request', 'malformed HTTP request'];
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify(errorBody(message));
    socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), 1_000).unref();
  } else {
    socket.destroy();
  }
}
