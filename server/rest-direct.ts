/**
 * REST routes that call a procedure directly (tRPC's server-side caller)
 * instead of going through trpc-to-openapi's HTTP handler: every procedure
 * whose meta says `direct: true` (routers/_app.ts lists them).
 *
 * Why: trpc-to-openapi serves every REST path from one wildcard route that,
 * per request, adapts Fastify's request and reply to a WHATWG `Request` and
 * parses the body again; for a hot endpoint that adapter costs more than the
 * work. Here Fastify has already parsed the JSON body; the procedure runs with
 * the same middleware (auth, roles, write limits, error mapping), the same zod
 * input and output validation and the same context, so REST and tRPC still
 * answer alike. The path, method and success status come from the
 * procedure's `.meta({ openapi })`, so the OpenAPI document (still generated
 * by trpc-to-openapi) and this route cannot drift apart.
 */
import type { FastifyInstance } from 'fastify';
import { appRouter, procedures, type ProcedureEntry } from '../routers/_app.ts';
import type { Container } from './container.ts';
import { createContext } from './context.ts';
import { errorBody, errorMessage, errorStatus } from './errors.ts';
import { createCallerFactory } from './trpc.ts';

const createCaller = createCallerFactory(appRouter);
type Caller = ReturnType<typeof createCaller>;

/** Registers the REST route of every `direct` procedure; a specific route wins over trpc-to-openapi's wildcard. */
export function registerDirectRestRoutes(app: FastifyInstance, container: Container): void {
  for (const procedure of procedures) if (procedure.rest === 'direct') registerDirectRestRoute(app, container, procedure);
}

/** Registers one procedure's REST path (from its meta) as a plain Fastify route calling it. */
function registerDirectRestRoute(app: FastifyInstance, container: Container, { name, type, meta }: ProcedureEntry): void {
  if (!meta?.openapi) throw new Error(`${name} has no openapi meta`);
  // A query would need trpc-to-openapi's query-string coercion, which this route does not repeat.
  if (type !== 'mutation') throw new Error(`${name}: only mutations are served directly`);
  const { method, path } = meta.openapi;
  const successStatus = meta.successStatus ?? 200;
  const call = (caller: Caller, input: unknown) => (caller[name as keyof Caller] as (input: unknown) => Promise<unknown>)(input);

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
        return reply.status(errorStatus(err)).headers(ctx.responseHeaders).send(errorBody(errorMessage(err)));
      }
    },
  });
}
