/**
 * The typed client: `createEvalgateClient({ url, apiKey })` is a tRPC v11
 * client over `httpBatchLink`, typed by the server's AppRouter, so every
 * procedure (scheduleEvalRun, getEvalRun, …) is checked at compile time.
 */
import { createTRPCClient, httpBatchLink } from '@trpc/client';
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
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `${opts.url.replace(/\/+$/, '')}/trpc`,
        headers: () => ({ authorization: `Bearer ${opts.apiKey}` }),
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
      }),
    ],
  });
}

export type EvalgateClient = ReturnType<typeof createEvalgateClient>;
