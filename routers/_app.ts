/**
 * The whole API: every feature router, merged flat (procedure names are the
 * OpenAPI operationIds).
 *
 * Every procedure is on /trpc. On REST a procedure is served one of three
 * ways, and `procedures` below says which, from its meta, so the HTTP side
 * (server/http.ts) and the document (server/openapi.ts) read one list:
 * - `direct`: a plain Fastify route calling the procedure (server/rest-direct.ts),
 *   for the hot path; its meta has `direct: true`;
 * - `openapi`: trpc-to-openapi's handler, every other procedure with REST meta;
 * - `null`: tRPC only (the subscription: its REST twin is an SSE plain route).
 * What no procedure can do (the NDJSON upload, the SSE stream) are plain routes
 * beside the feature routers (`*.route.ts`), registered by server/http.ts.
 */
import { mergeRouters, type Meta } from '../server/trpc.ts';
import { datasetRouter } from './datasets/dataset.router.ts';
import { evalRouter } from './evals/eval.router.ts';
import { evalRunRouter } from './eval-runs/eval-run.router.ts';
import { webhookRouter } from './webhooks/webhook.router.ts';

export const appRouter = mergeRouters(evalRunRouter, datasetRouter, evalRouter, webhookRouter);

export type AppRouter = typeof appRouter;

/** A procedure's name (its tRPC path and operationId). */
export type ProcedureName = keyof typeof appRouter._def.procedures & string;

export interface ProcedureEntry {
  name: ProcedureName;
  type: 'query' | 'mutation' | 'subscription';
  meta: Meta | undefined;
  /** Which REST transport serves it; null: none (tRPC only). */
  rest: 'direct' | 'openapi' | null;
}

interface ProcedureDef {
  _def: { type: ProcedureEntry['type']; meta?: Meta };
}

/** Every procedure of the API, in the router's order, with the transport that serves it on REST. */
export const procedures: readonly ProcedureEntry[] = Object.entries(appRouter._def.procedures as Record<string, ProcedureDef>).map(
  ([name, { _def }]) => ({
    name: name as ProcedureName,
    type: _def.type,
    meta: _def.meta,
    rest: _def.meta?.direct === true ? 'direct' : _def.meta?.openapi ? 'openapi' : null,
  }),
);

const byName = new Map(procedures.map((p) => [p.name as string, p]));

/** The meta of the procedure at `name`, if there is one. */
export const procedureMeta = (name: string | undefined): Meta | undefined => (name === undefined ? undefined : byName.get(name)?.meta);
