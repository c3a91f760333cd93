/**
 * What the few plain Fastify routes (NDJSON upload, SSE events: things a
 * tRPC procedure cannot do) share with the procedures: the same credentials,
 * the same role lists and messages, the same write limits, and the same
 * `{ "error": "…" }` answers with Retry-After where it applies.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Role } from '../entities/index.ts';
import { authenticate, type Principal } from './auth.ts';
import type { Container } from './container.ts';
import { preauthenticated } from './context.ts';
import { errorBody, errorMessage, errorStatus } from './errors.ts';
import { DomainError, RateLimitedError } from '../domain/shared/errors.ts';
import { READ_ROLES, WRITE_ROLES } from './trpc.ts';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Authenticates the request and checks its role; a `write` also counts
 * against the write limits (429 with Retry-After), as writeProcedure does.
 */
export async function authorize(
  container: Container,
  em: EntityManager,
  req: FastifyRequest,
  reply: FastifyReply,
  access: 'read' | 'write',
): Promise<Principal> {
  const principal =
    preauthenticated.get(req.raw) ?? (await authenticate(req.headers.authorization, { em, apiKeys: container.apiKeys, jwt: container.jwt }));
  const roles: readonly Role[] = access === 'write' ? WRITE_ROLES : READ_ROLES;
  if (!roles.includes(principal.role)) {
    throw new DomainError('FORBIDDEN', `role "${principal.role}" may not do this; allowed: ${roles.join(', ')}`);
  }
  if (access === 'write') await container.writeLimiter.consume(principal);
  return principal;
}

/** A path parameter that must be a UUID (400 naming it otherwise). */
export function uuidParam(value: string, name = 'id'): string {
  if (!UUID_RE.test(value)) throw new DomainError('BAD_REQUEST', `invalid input: ${name}: must be a UUID`);
  return value;
}

/** Answers `{ "error" }` with the status (and Retry-After) the procedures would use; logs what is our fault. */
export function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown, what: string): FastifyReply {
  const status = errorStatus(err);
  if (status >= 500 && status !== 503) req.log.error({ err }, `${what} failed`);
  if (status === 503) void reply.header('retry-after', '1');
  else if (err instanceof RateLimitedError) void reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.status(status).send(errorBody(errorMessage(err)));
}
