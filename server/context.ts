import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from './auth.ts';
import type { Container } from './container.ts';
import type { Logger } from './logger.ts';

export interface Context {
  container: Container;
  /** A fork of the ORM's entity manager for this request only. */
  em: EntityManager;
  log: Logger;
  requestId: string;
  /** Raw Authorization header; resolved into `principal` by the auth middleware. */
  authorization: string | undefined;
  /** Request headers a procedure may read (Idempotency-Key, …), lower-cased names. */
  headers: Record<string, string | undefined>;
  /** Headers the transport should add to the response (e.g. Retry-After). */
  responseHeaders: Record<string, string>;
  /** Who the transport already authenticated (before reading the body, server/transport-guards.ts). */
  preauthenticated?: Principal;
}

/**
 * Principals of requests authenticated before their body was read, by raw
 * request: the procedures reuse them instead of verifying the credential twice.
 */
export const preauthenticated = new WeakMap<object, Principal>();

export interface ContextInput {
  authorization?: string;
  headers?: Record<string, string | undefined>;
  requestId?: string;
  log?: Logger;
}

/** A context without an HTTP request: tests and in-process callers use it. */
export function createContextInner(container: Container, input: ContextInput = {}): Context {
  const requestId = input.requestId ?? crypto.randomUUID();
  return {
    container,
    em: container.orm.em.fork() as EntityManager,
    log: input.log ?? container.log.child({ reqId: requestId }),
    requestId,
    authorization: input.authorization,
    headers: input.headers ?? {},
    responseHeaders: {},
  };
}

/** The HTTP context: reads what it needs from a Node/Fastify request. */
export function createContext(
  container: Container,
  req: { headers: Record<string, string | string[] | undefined>; id?: unknown; raw?: object },
): Context {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v[0] : v;
  const ctx = createContextInner(container, {
    authorization: headers.authorization,
    headers,
    requestId: typeof req.id === 'string' ? req.id : undefined,
  });
  const principal = req.raw ? preauthenticated.get(req.raw) : undefined;
  if (principal) ctx.preauthenticated = principal;
  return ctx;
}
