/**
 * GET /v1/eval-runs/{id}/events (watchEvalRunEvents): a run's progress as
 * Server-Sent Events, for people and scripts without a tRPC client.
 *   event: progress  data: EvalRun   on connect and whenever the run changes
 *   event: done      data: EvalRun   once it is completed or failed; then the stream ends
 *   `: ping` comments every 15 s keep proxies from closing an idle stream.
 * Errors before the stream starts are ordinary `{ "error" }` answers (401,
 * 403, 404, 429 with Retry-After past MAX_WATCHERS_PER_TENANT, …). A plain
 * Fastify route because trpc-to-openapi cannot stream; tRPC clients use the subscription watchEvalRun, fed by the same per-run feed.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Container } from '../../server/container.ts';
import { toTRPCError } from '../../server/errors.ts';
import { authorize, sendError, uuidParam } from '../../server/plain-route.ts';
import type { EvalRunDto } from '../../domain/eval-runs/eval-run.schema.ts';
import { closeWatchers, isFinished, openWatch, watchEvalRun, type WatchHandle } from '../../domain/eval-runs/eval-run-watch.service.ts';

export const EVENTS_PATH = '/v1/eval-runs/:id/events';
const HEARTBEAT_MS = 15_000;
/** EventSource clients wait this long before reconnecting after the stream drops. */
const RECONNECT_MS = 2_000;
/** A client that has not read a single event for this long is cut: its socket and buffer are freed. */
const DRAIN_TIMEOUT_MS = 60_000;

export async function registerEvalRunEvents(app: FastifyInstance, container: Container): Promise<void> {
  app.addHook('preClose', async () => closeWatchers(container));
  await app.register(async (scope) => {
    scope.get<{ Params: { id: string } }>(EVENTS_PATH, async (req, reply) => stream(container, req, reply));
  });
}

async function stream(container: Container, req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
  const client = new AbortController();
  reply.raw.on('close', () => client.abort());
  let handle: WatchHandle | undefined;
  let watch: AsyncGenerator<EvalRunDto, void>;
  let first: IteratorResult<EvalRunDto, void>;
  try {
    const principal = await authorize(container, container.orm.em.fork(), req, reply, 'read');
    const runId = uuidParam(req.params.id);
    handle = openWatch(container, principal.tenantId, client.signal);
    watch = await watchEvalRun(container, principal.tenantId, runId, handle.signal);
    first = await watch.next();
  } catch (err) {
    handle?.end();
    return sendError(req, reply, err, 'run events');
  }
  try {
    await serve(req, reply, watch, first, handle.signal);
  } finally {
    handle.end();
  }
}

async function serve(
  req: FastifyRequest,
  reply: FastifyReply,
  watch: AsyncGenerator<EvalRunDto, void>,
  first: IteratorResult<EvalRunDto, void>,
  signal: AbortSignal,
) {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // nginx and friends buffer responses unless told not to
    'x-accel-buffering': 'no',
  });
  /** Writes unless the socket is gone; false when the kernel's buffer is full and the client is not reading. */
  const send = (text: string): boolean => !res.destroyed && !res.writableEnded && res.write(text);
  send(`retry: ${RECONNECT_MS}\n\n`);
  // A client that does not read gets no pings piled on top of what it already has not read.
  const heartbeat = setInterval(() => {
    if (!res.writableNeedDrain) send(': ping\n\n');
  }, HEARTBEAT_MS);
  try {
    let progressSent = false;
    for (let next = first; !next.done; next = await watch.next()) {
      const run = next.value;
      const data = JSON.stringify(run);
      // README promises a progress event on connect: a run already finished gets one before its done.
      if (isFinished(run) && !progressSent) send(`event: progress\ndata: ${data}\n\n`);
      progressSent = true;
      const flushed = send(`event: ${isFinished(run) ? 'done' : 'progress'}\ndata: ${data}\n\n`);
      // Backpressure: take the next (then latest) snapshot only once this one is on its way, so a slow
      // reader holds one event in memory, skips the snapshots in between, and holds nobody else back.
      if (!flushed && !(await drained(res, signal))) {
        res.destroy();
        return;
      }
    }
  } catch (err) {
    // Mid-stream (the database went away, the run was deleted): end the stream; a client that reconnects gets a proper answer.
    const trpcError = toTRPCError(err);
    if (trpcError.code === 'INTERNAL_SERVER_ERROR') req.log.error({ err }, 'run events failed mid-stream');
  } finally {
    clearInterval(heartbeat);
    await watch.return();
    res.end();
  }
}

/** Waits for the socket to take more; false when it closes, the watch aborts, or it stays full past DRAIN_TIMEOUT_MS. */
function drained(res: NodeJS.WritableStream & { destroyed: boolean }, signal: AbortSignal): Promise<boolean> {
  if (res.destroyed || signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.removeListener('drain', onDrain);
      res.removeListener('close', onClose);
      signal.removeEventListener('abort', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(onClose, DRAIN_TIMEOUT_MS);
    res.once('drain', onDrain);
    res.once('close', onClose);
    signal.addEventListener('abort', onClose, { once: true });
  });
}
