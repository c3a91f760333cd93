/**
 * One webhook POST over node:http(s): a total deadline, no redirects, the
 * answer's body discarded, and (unless private targets are allowed) a socket
 * that can only connect to public addresses (webhook-target.ts).
 */
import http from 'node:http';
import https from 'node:https';
import { bareHost, checkHostShape, publicOnlyLookup, type Resolve } from './webhook-target.ts';

export interface WebhookAnswer {
  status: number;
  retryAfter: string | null;
}

export interface PostOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** Name → addresses for the public-only check (default: the system's resolver). */
  resolve?: Resolve;
}

export async function postWebhook(url: string, headers: Record<string, string>, body: string, opts: PostOptions): Promise<WebhookAnswer> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const host = bareHost(target);
  // An IP literal is checked here; a name (localhost included) is checked on its DNS answer, in the lookup.
  if (!opts.allowPrivate) checkHostShape(host);
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        // IP literals are checked above and never looked up; names are checked on the address used.
        lookup: opts.allowPrivate ? undefined : publicOnlyLookup(opts.resolve),
        signal: AbortSignal.timeout(opts.timeoutMs),
      },
      (res) => {
        const retryAfter = res.headers['retry-after'];
        res.resume();
        res.on('error', () => undefined);
        resolve({ status: res.statusCode ?? 0, retryAfter: typeof retryAfter === 'string' ? retryAfter : null });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
