/**
 * buildApp: one Fastify instance serving tRPC (/trpc), the same procedures as
 * REST (/v1), the OpenAPI document and /docs, health, /metrics and the BullMQ
 * board. REST is served three ways, one per need (routers/_app.ts says which
 * procedure goes where): trpc-to-openapi's handler for most procedures,
 * direct routes (rest-direct.ts) for those whose meta says `direct`, and
 * plain routes for what no procedure can do (the NDJSON upload, SSE). Every
 * error a client can see outside /trpc (and the board's own API) is
 * errorBody's `{ "error": "…" }`.
 */
import { randomUUID } from 'node:crypto';
import { fastifyTRPCPlugin } from '@trpc/server/adapters/fastify';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import { fastifyTRPCOpenApiPlugin } from 'trpc-to-openapi';
import { appRouter, procedureMeta } from '../routers/_app.ts';
import { BATCH_BYTES as UPLOAD_BATCH_BYTES, registerDatasetUpload, UPLOAD_PATH } from '../routers/datasets/dataset-upload.route.ts';
import { registerEvalRunEvents } from '../routers/eval-runs/eval-run-events.route.ts';
import { registerEvalRunExport } from '../routers/eval-runs/eval-run-export.route.ts';
import type { Workers } from './workers.ts';
import { registerBoard } from './board.ts';
import type { Container } from './container.ts';
import { createContext, type Context } from './context.ts';
import { registerDocs } from './docs.ts';
import { formatIssues, sanitizeError } from '../domain/shared/errors.ts';
import { errorBody, INTERNAL_ERROR_MESSAGE, noRouteMessage, safeMessage } from './errors.ts';
import { registerHealth } from './health.ts';
import { registerMetrics } from './metrics.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { registerDirectRestRoutes } from './rest-direct.ts';
import { clientErrorHandler, refuseJsonText, registerBodyGuards, registerTrpcGuards, sendTransportError } from './transport-guards.ts';

export type App = Awaited<ReturnType<typeof buildApp>>;

/** Routes whose body is a long stream: only the idle timeout applies to them, not the total one. */
const STREAMED_BODY_ROUTES: ReadonlyMap<string, number> = new Map([[UPLOAD_PATH, UPLOAD_BATCH_BYTES]]);

export interface AppOptions {
  /** Workers running in this process, for /readyz. */
  workers?: Workers;
}

export async function buildApp(container: Container, opts: AppOptions = {}) {
  const { env, log } = container;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: env.BODY_LIMIT_BYTES,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // One log line per request only at debug: at info, every request of the hot path would pay for a log write.
    logController: new LogController({ disableRequestLogging: env.LOG_LEVEL !== 'debug' && env.LOG_LEVEL !== 'trace' }),
    // A tRPC batch names its calls in one path parameter (`/trpc/a,b,c`): room for TRPC_MAX_BATCH of them.
    routerOptions: { maxParamLength: 2_000 },
    forceCloseConnections: 'idle',
    // Slow headers: Node cuts them (408 via clientErrorHandler); it checks every connection this often.
    http: { headersTimeout: env.HEADERS_TIMEOUT_MS, connectionsCheckingInterval: Math.min(1_000, Math.max(50, Math.floor(env.HEADERS_TIMEOUT_MS / 2))) },
    // Node's own whole-request timeout would cut the NDJSON upload, a long stream by design: bodies are
    // timed per route by the body guards (server/transport-guards.ts) instead.
    requestTimeout: 0,
    clientErrorHandler,
    // Errors the router raises before any route runs (a malformed URL escape, …) answer { error } too.
    frameworkErrors: (err, _req, reply) => {
      const raw = reply as unknown as { status(code: number): { send(body: unknown): unknown } };
      void raw.status(400).send(errorBody(err.code === 'FST_ERR_BAD_URL' ? 'malformed URL' : `bad request: ${err.message}`));
    },
  });

  // JSON bodies: Fastify's own parser (it refuses __proto__ and constructor keys), behind a one-pass
  // nesting check. Libraries downstream re-serialise bodies recursively, so depth is capped up front.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    // Depth first; then a body of many tiny values, which costs far more heap than its bytes, is charged before the parse.
    const refused = refuseJsonText(req.raw, body as string, env, 'body');
    if (refused) {
      return done(Object.assign(new Error(refused.message), { statusCode: refused.status, retryAfter: refused.retryAfter }), undefined);
    }
    void defaultJson(req, body as string, done);
  });

  app.setErrorHandler((err: FastifyError & { retryAfter?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (err.retryAfter !== undefined) void reply.header('retry-after', String(err.retryAfter));
    if (status >= 500) req.log.error({ err }, 'request failed');
    return sendTransportError(req, reply, status === 415 ? 400 : status, fastifyErrorMessage(err, status, env.BODY_LIMIT_BYTES));
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send(errorBody(noRouteMessage(req.method, req.url))));

  const openApiDocument = buildOpenApiDocument();
  // Before any route or plugin: the duration hook only reaches what is registered after it.
  registerMetrics(app, container, openApiDocument);
  app.server.maxConnections = env.MAX_CONNECTIONS;
  // Before any route too: the credential is checked and the body's bytes reserved before the body is read.
  registerBodyGuards(app, container, STREAMED_BODY_ROUTES);
  app.get('/openapi.json', async () => openApiDocument);
  registerHealth(app, container, opts.workers);

  const onError = ({ error, path, ctx }: { error: { code: string; cause?: unknown }; path?: string; ctx?: Context }) => {
    if (error.code === 'INTERNAL_SERVER_ERROR') (ctx?.log ?? log).error({ err: sanitizeError(error.cause ?? error), path }, 'procedure failed');
  };

  await app.register(async (scope) => {
    registerTrpcGuards(scope, env);
    await scope.register(fastifyTRPCPlugin, {
      prefix: '/trpc',
      trpcOptions: {
        router: appRouter,
        createContext: ({ req }: { req: FastifyRequest }) => createContext(container, req),
        onError,
        maxBatchSize: env.TRPC_MAX_BATCH,
        maxBodySize: env.BODY_LIMIT_BYTES,
        // Retry-After (429, 503) and whatever else a procedure set for the transport, as REST sends it.
        responseMeta: ({ ctx }: { ctx?: Context }) => ({ headers: ctx?.responseHeaders ?? {} }),
      },
    });
  });

  await registerDatasetUpload(app, container);
  await registerEvalRunEvents(app, container);
  await registerEvalRunExport(app, container);
  await registerBoard(app, container);
  await registerDocs(app, openApiDocument);

  await app.register(async (rest) => {
    rest.addHook('onSend', async (req, reply, payload) => rewriteRestError(req, reply, payload));
    // POSTs whose input is all in the path (cancel, retry) are sent without a body by most clients;
    // trpc-to-openapi insists on a JSON content type, so an absent body counts as an empty JSON one.
    rest.addHook('preHandler', async (req) => {
      if (req.body === undefined && req.headers['content-type'] === undefined && req.method !== 'GET' && req.method !== 'DELETE') {
        req.headers['content-type'] = 'application/json';
      }
    });
    // Procedures whose meta says `direct` skip trpc-to-openapi's per-request adapter (rest-direct.ts);
    // their specific routes win over the plugin's wildcard, which serves every other REST path.
    registerDirectRestRoutes(rest, container);
    await rest.register(fastifyTRPCOpenApiPlugin, {
      router: appRouter,
      createContext: ({ req }: { req: FastifyRequest }) => createContext(container, req),
      responseMeta: ({ ctx, paths, errors }: { ctx?: unknown; paths?: readonly string[]; errors: unknown[] }) => {
        const headers = (ctx as Context | undefined)?.responseHeaders ?? {};
        if (errors.length > 0) return { headers };
        return { status: procedureMeta(paths?.[0])?.successStatus ?? 200, headers };
      },
      onError,
      maxBodySize: env.BODY_LIMIT_BYTES,
    });
  });

  return app;
}

/** An error Fastify raised (body parsing, limits) in the words the procedures use for the same fault. */
function fastifyErrorMessage(err: FastifyError, status: number, limit: number): string {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'request body is not valid JSON';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'request body must be JSON (Content-Type: application/json)';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `request body is larger than ${limit} bytes`;
    default:
      if (err.name === 'SyntaxError') return 'request body is not valid JSON';
      return safeMessage(status, err.message);
  }
}

interface TrpcOpenApiErrorBody {
  message?: string;
  code?: string;
  issues?: { path?: PropertyKey[]; message: string }[];
  error?: string;
}

/** trpc-to-openapi answers errors as `{message, code, issues}`; the contract says `{ "error": "…" }`. */
function rewriteRestError(req: FastifyRequest, reply: FastifyReply, payload: unknown): unknown {
  if (reply.statusCode < 400 || typeof payload !== 'string') return payload;
  let body: TrpcOpenApiErrorBody;
  try {
    body = JSON.parse(payload) as TrpcOpenApiErrorBody;
  } catch {
    // Not JSON, so not ours to vouch for: a 5xx of that kind (even a 503) says nothing of itself.
    return JSON.stringify(errorBody(reply.statusCode >= 500 ? INTERNAL_ERROR_MESSAGE : payload.slice(0, 200)));
  }
  if (typeof body.error === 'string' && Object.keys(body).length === 1) return payload;
  let message = body.message ?? 'request failed';
  if (Array.isArray(body.issues) && body.issues.length > 0) message = formatIssues(body.issues);
  else if (body.code === 'UNSUPPORTED_MEDIA_TYPE') {
    void reply.status(400);
    message = 'request body must be JSON (Content-Type: application/json)';
  } else if (body.code === 'NOT_FOUND' && message === 'Not found') {
    message = noRouteMessage(req.method, req.url);
  } else {
    message = safeMessage(reply.statusCode, message);
  }
  void reply.header('content-type', 'application/json; charset=utf-8');
  return JSON.stringify(errorBody(message));
}
