/**
 * Builds a REST procedure's `.meta()`: the method, path and summary it is
 * served at, plus what differs from the rest. Every procedure behind the
 * role-gated builders can answer 400 (input), 401, 403, 429 (write limits)
 * and 503 (a dependency is down), so those are always listed; `errors`
 * names the others (404, 409, 413, 422). The operationId is the procedure's
 * key (trpc-to-openapi's default), so it cannot drift from the tRPC name.
 */
import type { z } from 'zod';
import type { Meta } from '../server/trpc.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type ErrorStatus = 404 | 409 | 413 | 422;

export const STANDARD_ERRORS = [400, 401, 403, 429, 503] as const;

export interface RestOptions {
  summary: string;
  description?: string;
  /** Statuses beyond the standard ones this procedure can answer. */
  errors?: readonly ErrorStatus[];
  successStatus?: Meta['successStatus'];
  successDescription?: string;
  requestSchemaId?: string;
  requestHeaders?: z.ZodObject;
  /** Served by a plain Fastify route calling the procedure (server/rest-direct.ts), not trpc-to-openapi's handler. */
  direct?: boolean;
}

/** `restMeta('eval-runs')('GET', '/v1/eval-runs/{id}', { summary, errors: [404] })` */
export function restMeta(tag: string) {
  return (method: Method, path: `/${string}`, o: RestOptions): Meta => ({
    openapi: {
      method,
      path,
      tags: [tag],
      summary: o.summary,
      ...(o.description !== undefined && { description: o.description }),
      ...(o.successDescription !== undefined && { successDescription: o.successDescription }),
      ...(o.requestHeaders !== undefined && { requestHeaders: o.requestHeaders }),
      errorResponses: [...STANDARD_ERRORS, ...(o.errors ?? [])].sort((a, b) => a - b),
    },
    ...(o.successStatus !== undefined && { successStatus: o.successStatus }),
    ...(o.requestSchemaId !== undefined && { requestSchemaId: o.requestSchemaId }),
    ...(o.direct === true && { direct: true }),
  });
}
