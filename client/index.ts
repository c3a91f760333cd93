/**
 * The typed client: `createEvalgateClient({ url, apiKey })` is a tRPC v11
 * client over `httpBatchLink`, typed by the server's AppRouter, so every
 * procedure (scheduleEvalRun, getEvalRun, …) is checked at compile time.
 * Subscriptions (watchEvalRun) go over Server-Sent Events through
 * `httpSubscriptionLink`, with the `eventsource` package's EventSource: it
 * runs on Node 20 and, unlike a browser's, can send the Authorization header.
 *
 * Published as `@evalgate/client` (client/package.json, built by
 * `npm run build:client`). It re-exports `TRPCClientError` so an app tests
 * errors against the very class the client throws (`instanceof` across two
 * copies of @trpc/client is false), and `isEvalgateError` for the same check
 * as a type guard.
 */
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink, TRPCClientError, type TRPCClient } from '@trpc/client';
import { EventSource } from 'eventsource';
import type { AppRouter } from './app-router.ts';

export type { AppRouter };
export { TRPCClientError };

/** An error from an evalgate procedure: `e.data?.code` is the tRPC code ('NOT_FOUND', 'BAD_REQUEST', …), `e.data?.httpStatus` its HTTP status. */
export type EvalgateError = TRPCClientError<AppRouter>;

/**
 * True for every error the client rejects with (the server's answer, or a
 * network failure wrapped by tRPC). Besides `instanceof`, it recognises a
 * TRPCClientError made by another copy of @trpc/client by its name.
 */
export function isEvalgateError(e: unknown): e is EvalgateError {
  return e instanceof TRPCClientError || (e instanceof Error && e.name === 'TRPCClientError' && 'shape' in e);
}

export interface EvalgateClientOptions {
  /** Base URL of evalgate, e.g. http://localhost:8080 */
  url: string;
  /** A `tl_…` API key or a session JWT */
  apiKey: string;
  fetch?: typeof fetch;
}

export function createEvalgateClient(opts: EvalgateClientOptions): TRPCClient<AppRouter> {
  const url = `${opts.url.replace(/\/+$/, '')}/trpc`;
  const authorization = `Bearer ${opts.apiKey}`;
  const baseFetch = opts.fetch ?? fetch;
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url,
          EventSource,
          eventSourceOptions: () => ({
            fetch: (input, init) => baseFetch(input, { ...init, headers: { ...init.headers, authorization } }),
          }),
        }),
        false: httpBatchLink({
          url,
          headers: () => ({ authorization }),
          ...(opts.fetch ? { fetch: opts.fetch } : {}),
        }),
      }),
    ],
  });
}

export type EvalgateClient = TRPCClient<AppRouter>;
