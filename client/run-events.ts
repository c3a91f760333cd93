/**
 * `followEvalRun`: reads GET /v1/eval-runs/{id}/events (Server-Sent Events)
 * with plain fetch and eventsource-parser, for scripts and the CLI's
 * `runs:watch`. Yields every `progress` and the final `done` event;
 * reconnects when an established stream drops before the run ended (a
 * restart, a proxy), and throws `EvalgateHttpError` with the server's
 * `{ "error" }` message otherwise.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import type { EvalRunDto } from '../domain/eval-runs/eval-run.schema.ts';

export interface RunEvent {
  event: 'progress' | 'done';
  run: EvalRunDto;
}

export class EvalgateHttpError extends Error {
  override name = 'EvalgateHttpError';
  constructor(
    public readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface FollowOptions {
  /** Base URL of evalgate, e.g. http://localhost:8080 */
  url: string;
  apiKey: string;
  runId: string;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  /** Reconnects in a row, after the first connection, before giving up (default 30). */
  maxReconnects?: number;
}

export async function* followEvalRun(opts: FollowOptions): AsyncGenerator<RunEvent, void> {
  const base = opts.url.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? fetch;
  const maxReconnects = opts.maxReconnects ?? 30;
  let connected = false;
  let failures = 0;
  let retryMs = 2_000;
  const again = async (why: string) => {
    if (++failures > maxReconnects) throw new Error(`gave up after ${maxReconnects} reconnects: ${why}`);
    await sleep(retryMs, undefined, opts.signal ? { signal: opts.signal } : undefined);
  };

  for (;;) {
    let res: Response;
    try {
      res = await doFetch(`${base}/v1/eval-runs/${encodeURIComponent(opts.runId)}/events`, {
        headers: { authorization: `Bearer ${opts.apiKey}`, accept: 'text/event-stream' },
        signal: opts.signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) return;
      const why = `cannot reach ${base}: ${describe(err)}`;
      if (!connected) throw new Error(why); // a wrong URL should say so at once, not after a minute of retries
      await again(why);
      continue;
    }
    if (!res.ok || !res.body) {
      const message = await errorMessage(res);
      if (res.status === 503 && connected) {
        await again(message);
        continue;
      }
      throw new EvalgateHttpError(res.status, message);
    }
    connected = true;
    failures = 0;
    try {
      // `retry:` sets the reconnect delay as soon as it is read, as the SSE format says
      const events = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream({ onRetry: (ms) => (retryMs = ms) }));
      for await (const ev of events) {
        if (ev.event !== 'progress' && ev.event !== 'done') continue;
        yield { event: ev.event, run: JSON.parse(ev.data) as EvalRunDto };
        if (ev.event === 'done') return;
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      await again(`stream broke: ${describe(err)}`);
      continue;
    }
    if (opts.signal?.aborted) return;
    await again('the stream ended before the run did');
  }
}

async function errorMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: fall through
  }
  return `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
