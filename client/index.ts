/**
 * The typed client: `createEvalgateClient({ url, apiKey })` is a tRPC v11
 * client over `httpBatchLink`, typed by the server's AppRouter, so every
 * procedure (scheduleEvalRun, getEvalRun, …) is checked at compile time.
 * Subscriptions (watchEvalRun) go over Server-Sent Events through
 * `httpSubscriptionLink`, with the `eventsource` package's EventSource: it
 * runs on Node 20 and, unlike a browser's, can send the Authorization header.
 */
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import { EventSource } from 'eventsource';
import type { AppRouter } from '../routers/_app.ts';

export type { AppRouter };

export interface EvalgateClientOptions {
  /** Base URL of evalgate, e.g. http://localhost:8080 */
  url: string;
  /** A `tl_…` API key or a session JWT */
  apiKey: string;
  fetch?: typeof fetch;
}

export function createEvalgateClient(opts: EvalgateClientOptions) {
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

export type EvalgateClient = ReturnType<typeof createEvalgateClient>;
