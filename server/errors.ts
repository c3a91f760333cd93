/**
 * The one error mapper: domain, auth, ORM and driver errors become tRPC codes;
 * tRPC codes become `{ "error": "…" }` on REST. 5xx messages are never shown
 * to clients (they are logged with the request id instead).
 */
import { TRPCError } from '@trpc/server';
import { AuthError } from './auth.ts';
import { DomainError, formatIssues, isTransientInfraError, type IssueLike } from '../domain/shared/errors.ts';

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

