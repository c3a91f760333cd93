/**
 * GET /v1/eval-runs/{id}/events (watchEvalRunEvents): a run's progress as
 * Server-Sent Events, for people and scripts without a tRPC client.
 *   event: progress  data: EvalRun   on connect and whenever the run changes
 *   event: done      data: EvalRun   once it is completed or failed; then the stream ends
 *   `: ping` comments every 15 s keep proxies from closing an idle stream.
 * Errors before the stream starts are ordinary `{ "error" }` answers (401,
 * 403, 404, …). A plain Fastify route because trpc-to-openapi cannot stream;
 * tRPC clients use the subscription watchEvalRun, fed by the same generator.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Container } from '../../server/container.ts';
import { toTRPCError } from '../../server/errors.ts';
import { authorize, sendError, uuidParam } from '../../server/plain-route.ts';
import type { EvalRunDto } from './eval-run.schema.ts';
import { closeWatchers, isFinished, openWatch, watchEvalRun } from './eval-run-watch.service.ts';

export const EVENTS_PATH = '/v1/eval-runs/:id/events';
const HEARTBEAT_MS = 15_000;
/** EventSource clients wait this long before reconnecting after the stream drops. */
const RECONNECT_MS = 2_000;

export async function registerEvalRunEvents(app: FastifyInstance, container: Container): Promise<void> {
  app.addHook('preClose', async () => closeWatchers(container));
  await app.register(async (scope) => {
    scope.get<{ Params: { id: string } }>(EVENTS_PATH, async (req, reply) => stream(container, req, reply));
  });
}

async function stream(container: Container, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
  const client = new AbortController();
  reply.raw.on('close', () => client.abort());
  const handle = openWatch(container, client.signal);
  try {
    await serve(container, req, reply, handle.signal);
  } finally {
    handle.end();
  }
}

async function serve(container: Container, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, signal: AbortSignal) {
  const em = container.orm.em.fork();
  let watch: AsyncGenerator<EvalRunDto, void>;
  let first: IteratorResult<EvalRunDto, void>;
  try {
    const principal = await authorize(container, em, req, reply, 'read');
    watch = watchEvalRun(em, principal.tenantId, uuidParam(req.params.id), { intervalMs: container.env.RUN_WATCH_INTERVAL_MS, signal });
    first = await watch.next();
  } catch (err) {
    return sendError(req, reply, err, 'run events');
  }

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // nginx and friends buffer responses unless told not to
    'x-accel-buffering': 'no',
  });
  const send = (text: string) => {
    if (!res.destroyed && !res.writableEnded) res.write(text);
  };
  send(`retry: ${RECONNECT_MS}\n\n`);
  const heartbeat = setInterval(() => send(': ping\n\n'), HEARTBEAT_MS);
  try {
    for (let next = first; !next.done; next = await watch.next()) {
      const run = next.value;
      send(`event: ${isFinished(run) ? 'done' : 'progress'}\ndata: ${JSON.stringify(run)}\n\n`);
    }
  } catch (err) {
    // Mid-stream (the database went away, the run was deleted): end the stream; a client that reconnects gets a proper answer.
    const trpcError = toTRPCError(err);
    if (trpcError.code === 'INTERNAL_SERVER_ERROR') req.log.error({ err }, 'run events failed mid-stream');
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}
