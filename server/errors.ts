/**
 * The one error mapper: domain, auth, ORM and driver errors become tRPC codes
 * (toTRPCError); every answer outside /trpc that reports a failure is
 * `errorBody(message)`, and every message a client sees, in that body or in
 * tRPC's own shape, passes through errorMessage / safeMessage, so a stack or
 * an internal message cannot leak from one transport while another hides it.
 * 5xx messages other than 503's are logged with the request id instead.
 */
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { AuthError } from './auth.ts';
import { DomainError, formatIssues, isTransientInfraError, type IssueLike } from '../domain/shared/errors.ts';

/** What a client is told instead of a failure that is our fault. */
export const INTERNAL_ERROR_MESSAGE = 'internal server error';

/** The `{ "error": "…" }` body the contract's ErrorResponse describes. */
export interface ErrorBody {
  error: string;
}

/** Renders every `{ "error": "…" }` answer (REST, plain routes, health/metrics ports, the board's guard). */
export function errorBody(message: string): ErrorBody {
  return { error: message };
}

/** The 404 text of a path nothing serves (the query string is the client's own and is left out). */
export function noRouteMessage(method: string, url: string): string {
  return `no route for ${method} ${url.split('?')[0]}`;
}

/**
 * `message` as a client may see it at `status`: a 5xx other than 503 is our
 * fault and says only INTERNAL_ERROR_MESSAGE; a 503 (a dependency is down,
 * budgets are full) keeps its message, which tells the client to retry.
 */
export function safeMessage(status: number, message: string): string {
  return status >= 500 && status !== 503 ? INTERNAL_ERROR_MESSAGE : message;
}

/** Maps anything thrown inside a procedure to a TRPCError with a safe message. */
export function toTRPCError(err: unknown): TRPCError {
  if (err instanceof TRPCError) return err;
  if (err instanceof DomainError) return new TRPCError({ code: err.code, message: err.message, cause: err });
  if (err instanceof AuthError) return new TRPCError({ code: 'UNAUTHORIZED', message: err.message, cause: err });
  if (isTransientInfraError(err)) {
    return new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: 'database unavailable, retry shortly', cause: err as Error });
  }
  return new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: INTERNAL_ERROR_MESSAGE, cause: err as Error });
}

/** The HTTP status anything thrown answers with (the one tRPC gives its code). */
export function errorStatus(err: unknown): number {
  return getHTTPStatusCodeFromError(toTRPCError(err));
}

/**
 * The public message of anything thrown (or of a TRPCError tRPC is about to
 * send): zod issues as one line naming each field, tRPC's parse failure in
 * our words, never a stack or an internal message.
 */
export function errorMessage(err: unknown): string {
  const error = toTRPCError(err);
  const cause = error.cause as { issues?: unknown } | undefined;
  if (error.code === 'BAD_REQUEST' && cause && Array.isArray(cause.issues)) return formatIssues(cause.issues as IssueLike[]);
  if (error.code === 'PARSE_ERROR') return 'request body is not valid JSON';
  return safeMessage(getHTTPStatusCodeFromError(error), error.message);
}
