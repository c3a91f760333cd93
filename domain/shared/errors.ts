/**
 * Errors the domain raises and the checks every layer shares: a DomainError is
 * one a user caused and can fix (its code is the tRPC code it becomes, its
 * message is shown as is); server/errors.ts turns everything else into a safe answer.
 */
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';

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

export interface IssueLike {
  path?: readonly PropertyKey[] | readonly { key: PropertyKey }[];
  message: string;
}

/** Turns validation issues into one line that names each field: `eval_version_id: Invalid UUID`. */
export function formatIssues(input: readonly IssueLike[]): string {
  const issues = flattenUnions(input);
  const parts = issues.slice(0, 5).map((i) => {
    const path = (i.path ?? [])
      .map((p) => (typeof p === 'object' && p !== null ? String((p as { key: PropertyKey }).key) : String(p)))
      .join('.');
    return path ? `${path}: ${i.message}` : i.message;
  });
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  return `invalid input: ${parts.join('; ')}${more}`;
}

/**
 * A union none of whose options matched (an evaluator that is neither one
 * evaluator nor criteria) is reported by its first option's issues, which name
 * the field at fault, instead of a bare "Invalid input".
 */
function flattenUnions(issues: readonly IssueLike[]): IssueLike[] {
  return issues.flatMap((i) => {
    const u = i as IssueLike & { code?: unknown; errors?: unknown };
    const first = u.code === 'invalid_union' && Array.isArray(u.errors) ? (u.errors[0] as IssueLike[] | undefined) : undefined;
    if (!first || first.length === 0) return [i];
    const at = (i.path ?? []) as readonly PropertyKey[];
    return flattenUnions(first.map((f) => ({ ...f, path: [...at, ...((f.path ?? []) as readonly PropertyKey[])] })));
  });
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

/** A limit said no; the transport adds Retry-After from `retryAfterSeconds`. */
export class RateLimitedError extends DomainError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super('TOO_MANY_REQUESTS', message);
  }
}
