/**
 * The one error mapper: domain, auth, ORM and driver errors become tRPC codes;
 * tRPC codes become `{ "error": "…" }` on REST. 5xx messages are never shown
 * to clients (they are logged with the request id instead).
 */
import { TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { AuthError } from './auth.ts';

/** An error a user caused and can fix; its message is shown as is. */
export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    public readonly code: TRPC_ERROR_CODE_KEY,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string, id?: string) =>
  new DomainError('NOT_FOUND', id ? `${what} ${id} not found` : `${what} not found`);

interface IssueLike {
  path?: readonly PropertyKey[] | readonly { key: PropertyKey }[];
  message: string;
}

/** Turns validation issues into one line that names each field: `eval_version_id: Invalid UUID`. */
export function formatIssues(issues: readonly IssueLike[]): string {
  const parts = issues.slice(0, 5).map((i) => {
    const path = (i.path ?? [])
      .map((p) => (typeof p === 'object' && p !== null ? String((p as { key: PropertyKey }).key) : String(p)))
      .join('.');
    return path ? `${path}: ${i.message}` : i.message;
  });
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  return `invalid input: ${parts.join('; ')}${more}`;
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P02', '57P03', '08000', '08003', '08006', '53300']);

/** Is this a lost or refused database/Redis connection (retrying later can help)? */
export function isTransientInfraError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
    const msg = (e as { message?: unknown }).message;
    if (
      typeof msg === 'string' &&
      /Connection terminated|connection timeout|Knex: Timeout acquiring a connection|Connection is closed|Stream isn't writeable|getaddrinfo|the database system is (starting up|shutting down)/i.test(
        msg,
      )
    ) {
      return true;
    }
    e = (e as { cause?: unknown }).cause ?? (e as { previous?: unknown }).previous;
  }
  return false;
}

/** Maps anything thrown inside a procedure to a TRPCError with a safe message. */
export function toTRPCError(err: unknown): TRPCError {
  if (err instanceof TRPCError) return err;
  if (err instanceof DomainError) return new TRPCError({ code: err.code, message: err.message, cause: err });
  if (err instanceof AuthError) return new TRPCError({ code: 'UNAUTHORIZED', message: err.message, cause: err });
  if (isTransientInfraError(err)) {
    return new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'database unavailable, retry shortly', cause: err as Error });
  }
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: 'internal server error', cause: err as Error });
}

/** The user-facing message of an error that tRPC is about to send. */
export function publicMessage(error: TRPCError): string {
  const cause = error.cause as { issues?: unknown } | undefined;
  if (error.code === 'BAD_REQUEST' && cause && Array.isArray(cause.issues)) return formatIssues(cause.issues as IssueLike[]);
  if (error.code === 'INTERNAL_SERVER_ERROR') return 'internal server error';
  if (error.code === 'PARSE_ERROR') return 'request body is not valid JSON';
  return error.message;
}

/**
 * An error safe to store or log: the ORM puts the whole SQL (with item data)
 * in its messages; keep only the database's own sentence.
 */
export function sanitizeError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err).slice(0, 500));
  const m = err.message;
  const looksLikeSql = /^\s*(with|select|insert|update|delete)\b/i.test(m) && m.includes(' - ');
  if (!looksLikeSql && m.length <= 1_000) return err;
  const clean = new Error(looksLikeSql ? `database error: ${m.slice(m.lastIndexOf(' - ') + 3).slice(0, 500)}` : `${m.slice(0, 1_000)}…`);
  clean.name = err.name;
  (clean as { code?: unknown }).code = (err as { code?: unknown }).code;
  return clean;
}
