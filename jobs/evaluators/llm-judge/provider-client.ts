/**
 * One chat-completions request to an OpenAI-compatible provider, with the
 * outcome classified for the retry policy. The API key is read from the
 * provider config at call time and only ever goes into this request's header.
 */
import type { ProviderConfig } from '../../../server/env.ts';

export type Usage = { prompt_tokens: number; completion_tokens: number };

export type CallOutcome =
  | { kind: 'answer'; text: string; usage: Usage }
  /** 429: wait this long, then try again without using up an attempt */
  | { kind: 'rate_limited'; retryAfterMs: number | null }
  /** 5xx, 408, timeouts, lost connections: back off and retry */
  | { kind: 'transient'; message: string }
  /** 401/403: the key is wrong for every item; the run fails */
  | { kind: 'auth'; status: number; message: string }
  /** other 4xx: this item's request is wrong (too long, …); retrying cannot help */
  | { kind: 'rejected'; status: number; message: string };

export interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  params?: Record<string, unknown>;
  responseFormat?: Record<string, unknown>;
}

/** `Retry-After` as seconds or an HTTP date, in ms. */
export function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : null;
}

function snippet(text: string, n = 200): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

export async function callChatCompletions(provider: ProviderConfig, req: ChatRequest, signal: AbortSignal): Promise<CallOutcome> {
  const timeout = AbortSignal.timeout(provider.timeout_ms);
  let res: Response;
  try {
    res = await fetch(`${provider.base_url.replace(/\/+$/, '')}/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(provider.api_key ? { authorization: `Bearer ${provider.api_key}` } : {}),
      },
      body: JSON.stringify({ model: req.model, messages: req.messages, ...req.params, ...(req.responseFormat ? { response_format: req.responseFormat } : {}) }),
      signal: AbortSignal.any([signal, timeout]),
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err;
    if (timeout.aborted) return { kind: 'transient', message: `no answer within ${provider.timeout_ms} ms` };
    return { kind: 'transient', message: `request failed: ${(err as Error).message}` };
  }
  let body: string;
  try {
    body = await res.text();
  } catch (err) {
    if (signal.aborted) throw signal.reason ?? err;
    return { kind: 'transient', message: timeout.aborted ? `no answer within ${provider.timeout_ms} ms` : `response cut off: ${(err as Error).message}` };
  }
  if (res.status === 429) return { kind: 'rate_limited', retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) };
  if (res.status === 401 || res.status === 403) return { kind: 'auth', status: res.status, message: snippet(body) };
  if (res.status >= 500 || res.status === 408) return { kind: 'transient', message: `HTTP ${res.status}: ${snippet(body, 100)}` };
  if (res.status >= 400) return { kind: 'rejected', status: res.status, message: snippet(body) };
  let json: { choices?: { message?: { content?: unknown } }[]; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } };
  try {
    json = JSON.parse(body) as typeof json;
  } catch {
    // Not even a chat-completions envelope: treat like an unparsable answer.
    return { kind: 'answer', text: body, usage: { prompt_tokens: 0, completion_tokens: 0 } };
  }
  const content = json.choices?.[0]?.message?.content;
  const usage = {
    prompt_tokens: Number.isFinite(Number(json.usage?.prompt_tokens)) ? Number(json.usage?.prompt_tokens) : 0,
    completion_tokens: Number.isFinite(Number(json.usage?.completion_tokens)) ? Number(json.usage?.completion_tokens) : 0,
  };
  return { kind: 'answer', text: typeof content === 'string' ? content : JSON.stringify(json).slice(0, 1000), usage };
}
