/**
 * initTRPC is called once, here. Routers may only use the builders exported
 * below: `router`, `publicProcedure` and the role-gated procedures; the role
 * lists are exported too so the plain routes gate alike.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import type { OpenApiMeta } from 'trpc-to-openapi';
import type { Role } from '../entities/index.ts';
import { authenticate, type Principal } from './auth.ts';
import type { Context } from './context.ts';
import { errorMessage, toTRPCError } from './errors.ts';
import { RateLimitedError, sanitizeError } from '../domain/shared/errors.ts';
import { readsFromReplica } from '../domain/shared/sql.ts';

export interface Meta extends OpenApiMeta {
  /** HTTP status of a successful REST answer (202 for accepted work, 201 for creations); default 200. */
  successStatus?: 200 | 201 | 202 | 204;
  /** components.schemas name of the REST request body, when the contract names one. */
  requestSchemaId?: string;
  /** Served by a plain Fastify route that calls the procedure (server/rest-direct.ts); registered from this flag. */
  direct?: boolean;
}

const t = initTRPC
  .context<Context>()
  .meta<Meta>()
  .create({
    // Subscriptions (watchEvalRun) stream over SSE: pings keep proxies from cutting a quiet stream,
    // and a client that hears nothing for longer than a few pings reconnects.
    sse: { ping: { enabled: true, intervalMs: 15_000 }, client: { reconnectAfterInactivityMs: 40_000 } },
    errorFormatter({ shape, error }) {
      // The tRPC shape stays (the tRPC client reads it); its message is the one REST
      // would show (errorMessage), never a stack or an internal message.
      return {
        message: errorMessage(error),
        code: shape.code,
        data: { code: shape.data.code, httpStatus: shape.data.httpStatus, path: shape.data.path },
      };
    },
  });

/** Builds a router; one per feature, merged in routers/_app.ts. */
export const router = t.router;
export const mergeRouters = t.mergeRouters;
export const createCallerFactory = t.createCallerFactory;

/**
 * Maps every thrown error to a TRPCError, logs the ones that are our fault,
 * and tells the client when to come back (Retry-After) on 429 and 503.
 */
const errorMapping = t.middleware(async ({ ctx, next, path }) => {
  const result = await next();
  if (!result.ok) {
    const mapped = toTRPCError(result.error.cause ?? result.error);
    const error = result.error.code === 'INTERNAL_SERVER_ERROR' ? mapped : result.error;
    if (error.code === 'INTERNAL_SERVER_ERROR') {
      ctx.log.error({ err: sanitizeError(error.cause ?? error), path }, 'procedure failed');
    } else if (error.code === 'SERVICE_UNAVAILABLE') {
      ctx.log.warn({ err: (error.cause as Error | undefined)?.message, path }, 'dependency unavailable');
      ctx.responseHeaders['retry-after'] = '1';
    } else if (error.cause instanceof RateLimitedError) {
      ctx.responseHeaders['retry-after'] = String(error.cause.retryAfterSeconds);
    }
    return { ...result, error };
  }
  return result;
});

/** A procedure anyone may call (health, docs). */
export const publicProcedure = t.procedure.use(errorMapping);

const authed = publicProcedure.use(async ({ ctx, next }) => {
  let principal: Principal;
  try {
    principal = ctx.preauthenticated ?? await authenticate(ctx.authorization, {
      em: ctx.em,
      apiKeys: ctx.container.apiKeys,
      jwt: ctx.container.jwt,
    });
  } catch (err) {
    throw toTRPCError(err);
  }
  ctx.log = ctx.log.child({ tenantId: principal.tenantId });
  return next({ ctx: { ...ctx, principal } });
});

function allow(roles: readonly Role[]) {
  return authed.use(({ ctx, next }) => {
    if (!roles.includes(ctx.principal.role)) {
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: `role "${ctx.principal.role}" may not do this; allowed: ${roles.join(', ')}`,
      });
    }
    return next();
  });
}

/** Who may read, write and destroy; plain Fastify routes use the same lists (server/plain-route.ts). */
export const READ_ROLES: readonly Role[] = ['owner', 'member', 'viewer'];
export const WRITE_ROLES: readonly Role[] = ['owner', 'member'];
export const OWNER_ROLES: readonly Role[] = ['owner'];

/**
 * Reads: owners, members and viewers. Their queries and subscriptions may read
 * from the read replica (DATABASE_REPLICA_URL) once the caller is
 * authenticated on the primary; a mutation among them (the gate) stays there.
 */
export const readProcedure = allow(READ_ROLES).use(({ ctx, type, next }) => {
  if (type !== 'mutation') readsFromReplica(ctx.em);
  return next();
});
/** Mutations count against the tenant's and the credential's write limits (Redis-shared). */
const rateLimited = t.middleware(async ({ ctx, next, type }) => {
  const c = ctx as Context & { principal: Principal };
  if (type === 'mutation') {
    try {
      await c.container.writeLimiter.consume(c.principal);
    } catch (err) {
      throw toTRPCError(err);
    }
  }
  return next();
});

/** Writes: owners and members. */
export const writeProcedure = allow(WRITE_ROLES).use(rateLimited);
/** Mutations that only read but cost like a write (the gate's aggregates over two runs): any role, under the write limits. */
export const checkProcedure = allow(READ_ROLES).use(rateLimited);
/** Destructive operations: owners only. */
export const ownerProcedure = allow(OWNER_ROLES).use(rateLimited);
