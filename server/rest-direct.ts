/**
 * A REST route that calls a procedure directly (tRPC's server-side caller)
 * instead of going through trpc-to-openapi's HTTP handler.
 *
 * Why: trpc-to-openapi serves every REST path from one wildcard route that,
 * per request, decorates Fastify's request and reply with Node methods, builds
 * a WHATWG `Request` (undici `Request`, `ReadableStream`, `AbortSignal`) and
 * parses the body again. On the hottest endpoint (scheduleEvalRun) that was
 * the largest single share of the API's CPU per request (bench/analysis.md).
 * Here Fastify has already parsed the JSON body; the procedure runs with the
 * same middleware (auth, roles, write limits, error mapping), the same zod
 * input and output validation and the same context, so REST and tRPC still
 * answer alike. The path, method and success status come from the
 * procedure's `.meta({ openapi })`, so the OpenAPI document (still generated
 * by trpc-to-openapi) and this route cannot drift apart.
 */
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import type { FastifyInstance } from 'fastify';
import { appRouter } from '../routers/_app.ts';
import type { Container } from './container.ts';
import { createContext } from './context.ts';
import { publicMessage, toTRPCError } from './errors.ts';
import { createCallerFactory, type Meta } from './trpc.ts';

const createCaller = createCallerFactory(appRouter);
type Caller = ReturnType<typeof createCaller>;
type ProcedureName = keyof typeof appRouter._def.procedures & keyof Caller;

/** Registers `name`'s REST path (from its meta) as a plain Fastify route calling the procedure. */
export function registerDirectRestRoute(app: FastifyInstance, container: Container, name: ProcedureName): void {
  const procedure = appRouter._def.procedures[name] as { _def: { meta?: Meta; type: string } };
  const meta = procedure._def.meta;
  if (!meta?.openapi) throw new Error(`${name} has no openapi meta`);
  if (procedure._def.type !== 'mutation') throw new Error(`${name}: only mutations are served directly`);
  const { method, path } = meta.openapi;
  const successStatus = meta.successStatus ?? 200;
  const call = (caller: Caller, input: unknown) => (caller[name] as (input: unknown) => Promise<unknown>)(input);

  app.route<{ Params: Record<string, string>; Body: unknown }>({
    method,
    url: path.replace(/\{(\w+)\}/g, ':$1'),
    handler: async (req, reply) => {
      const ctx = createContext(container, req);
      const body = req.body;
      // As trpc-to-openapi: the JSON body's fields and the path's parameters make one input object.
      const input = { ...(body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {}), ...req.params };
      try {
        const output = await call(createCaller(ctx), input);
        return await reply.status(successStatus).headers(ctx.responseHeaders).send(output);
      } catch (err) {
        const error = toTRPCError(err);
        return reply
          .status(getHTTPStatusCodeFromError(error))
          .headers(ctx.responseHeaders)
          .send({ error: publicMessage(error) });
      }
    },
  });
}
