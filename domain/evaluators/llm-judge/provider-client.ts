/**
 * One chat-completions request to an OpenAI-compatible provider, with the
 * outcome classified for the retry policy. The API key is read from the
 * provider config at call time and only ever goes into this request's header
 * (and is scrubbed from any message we build, in case a provider echoes it).
 *
 * Sent with undici (`Dispatcher.request`) over one keep-alive Agent per process
 * (createProviderAgent, owned by the composition root), not the global `fetch`,
 * whose WHATWG machinery (Request cloning, streams tee, AbortSignal.any) costs
 * several times the client CPU per request (bench/probe-fetch.ts measures it).
 */
import { EventEmitter } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import type { ProviderConfig } from '../../../server/env.ts';
import { onAbort } from './abort.ts';

export type Usage = { prompt_tokens: number; completion_tokens: number };

export type CallOutcome =
  | { kind: 'answer'; text: string; usage: Usage; finish_reason: string | null }
  /** 429: wait this long, then try again without using up an attempt */
  | { kind: 'rate_limited'; retryAfterMs: number | null }
  /** 5xx, 408, timeouts, lost connections, oversized responses: back off and retry */
  | { kind: 'transient'; message: string }
  /** 401/403: the key is wrong for every item; the run fails */
  | { kind: 'auth'; status: number; message: string }
  /** other 4xx: this item's request is wrong (too long, …); retrying cannot help */
  | { kind: 'rejected'; status: number; message: string };

export interface ChatRequest {
  model: string;
  /** Content is a string, or (messages taken from an item's input) whatever the item holds: content parts, tool calls. */
  messages: { role: string; content: unknown }[];
  params?: Record<string, unknown>;
  responseFormat?: Record<string, unknown>;
}

/** A judge's answer is a few KB; anything this large is a broken or hostile provider, and is not buffered. */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * One connection pool for every provider of a process. Its own timeouts are
 * off: `timeout_ms` (below) bounds the whole request, connect to last byte.
 * Idle sockets are unref'd by undici, so they do not keep a stopping process alive.
 */
export function createProviderAgent(): Agent {
  return new Agent({
    keepAliveTimeout: 4_000,
    headersTimeout: 0,
    bodyTimeout: 0,
    maxResponseSize: MAX_RESPONSE_BYTES,
  });
}

/** For callers that bring no agent (tests, benches): created on first use. */
let fallbackAgent: Agent | undefined;

/** `Retry-After` as seconds or an HTTP date, in ms. */
export function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : null;
}

function header(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function snippet(text: string, n = 200): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** Messages never carry the key, even when the provider or an error quotes it. */
function redact(provider: ProviderConfig, text: string): string {
  return provider.api_key && text.includes(provider.api_key) ? text.replaceAll(provider.api_key, '[redacted]') : text;
}

/** `{base_url}/chat/completions` as origin and path, parsed once per provider (undici would parse a URL string per request). */
const endpoints = new WeakMap<ProviderConfig, { origin: string; path: string }>();
function endpointOf(provider: ProviderConfig): { origin: string; path: string } {
  let endpoint = endpoints.get(provider);
  if (endpoint === undefined) {
    const url = new URL(`${provider.base_url.replace(/\/+$/, '')}/chat/completions`);
    endpoint = { origin: url.origin, path: `${url.pathname}${url.search}` };
    endpoints.set(provider, endpoint);
  }
  return endpoint;
}

function failureMessage(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (e?.code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return `response larger than ${MAX_RESPONSE_BYTES} bytes`;
  return typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
}

/** `dispatcher`: the process's provider agent (createProviderAgent). */
export async function callChatCompletions(
  provider: ProviderConfig,
  req: ChatRequest,
  signal: AbortSignal,
  dispatcher: Dispatcher = (fallbackAgent ??= createProviderAgent()),
): Promise<CallOutcome> {
  signal.throwIfAborted();
  // Aborts this request when the caller's signal aborts (a canceled run stops at
  // once) or at the timeout, which covers connect, headers and body. undici takes
  // an EventEmitter as its signal: far cheaper to make than an AbortController.
  const abort = new EventEmitter();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.emit('abort');
  }, provider.timeout_ms);
  const unsubscribe = onAbort(signal, () => abort.emit('abort'));
  const noAnswer = (): CallOutcome => ({ kind: 'transient', message: `no answer within ${provider.timeout_ms} ms` });
  try {
    let res: Dispatcher.ResponseData;
    try {
      const { origin, path } = endpointOf(provider);
      res = await dispatcher.request({
        origin,
        path,
        method: 'POST',
        headers: provider.api_key
          ? { 'content-type': 'application/json', authorization: `Bearer ${provider.api_key}` }
          : { 'content-type': 'application/json' },
        body: JSON.stringify({ model: req.model, messages: req.messages, ...req.params, ...(req.responseFormat ? { response_format: req.responseFormat } : {}) }),
        signal: abort,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      if (timedOut) return noAnswer();
      return { kind: 'transient', message: redact(provider, `request failed: ${failureMessage(err)}`) };
    }
    let body: string;
    try {
      body = await res.body.text();
    } catch (err) {
      if (signal.aborted) throw signal.reason ?? err;
      if (timedOut) return noAnswer();
      return { kind: 'transient', message: redact(provider, `response cut off: ${failureMessage(err)}`) };
    }
    const status = res.statusCode;
    if (status === 429) return { kind: 'rate_limited', retryAfterMs: parseRetryAfter(header(res.headers['retry-after'])) };
    if (status === 401 || status === 403) return { kind: 'auth', status, message: redact(provider, snippet(body)) };
    if (status >= 500 || status === 408) return { kind: 'transient', message: redact(provider, `HTTP ${status}: ${snippet(body, 100)}`) };
    if (status >= 400) return { kind: 'rejected', status, message: redact(provider, snippet(body)) };
    let json: { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[]; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } };
    try {
      json = JSON.parse(body) as typeof json;
    } catch {
      // Not even a chat-completions envelope: treat like an unparsable answer.
      return { kind: 'answer', text: redact(provider, body), usage: { prompt_tokens: 0, completion_tokens: 0 }, finish_reason: null };
    }
    const content = json?.choices?.[0]?.message?.content;
    const usage = {
      prompt_tokens: Number.isFinite(Number(json?.usage?.prompt_tokens)) ? Number(json?.usage?.prompt_tokens) : 0,
      completion_tokens: Number.isFinite(Number(json?.usage?.completion_tokens)) ? Number(json?.usage?.completion_tokens) : 0,
    };
    const finish = json?.choices?.[0]?.finish_reason;
    return {
      kind: 'answer',
      text: redact(provider, typeof content === 'string' ? content : JSON.stringify(json).slice(0, 1000)),
      usage,
      finish_reason: typeof finish === 'string' ? finish.slice(0, 100) : null,
    };
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
}
