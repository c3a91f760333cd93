/**
 * The `http` target: the team's own application, called once per item with a
 * JSON body rendered from the item; its answer (or the value at `output_path`
 * in it) is the output that is then scored.
 *
 * The endpoint (URL, method, headers with the credentials, limits) is a name
 * configured in EVALGATE_TARGETS: a run names it and never sees the rest, so
 * no URL or header value is part of the cache material, an answer or any
 * message built here (every header value is scrubbed from the answer and
 * from messages, in case the application echoes it).
 *
 * One request is sent with undici over a keep-alive Agent, as the judge's
 * provider client does: a total deadline (timeout_ms, connect to last byte),
 * a response read up to MAX_RESPONSE_BYTES and no further, no redirects
 * followed. Unless the endpoint sets `allow_private`, it may only reach
 * public addresses, with the webhooks' rules (webhook-target.ts): an IP
 * literal is judged before connecting, a name on the DNS answer the socket
 * then uses (so a name that rebinds to a private address is refused too).
 */
import { EventEmitter } from 'node:events';
import { Agent, type Dispatcher } from 'undici';
import type { TargetEndpointConfig } from '../../server/env.ts';
import type { EvalItem } from '../evaluators/types.ts';
import { onAbort } from '../evaluators/llm-judge/abort.ts';
import { parseRetryAfter } from '../evaluators/llm-judge/provider-client.ts';
import { ProviderLimiter } from '../evaluators/llm-judge/provider-limiter.ts';
import { PLACEHOLDER, PromptTooLarge, renderTemplate, valueAt } from '../evaluators/llm-judge/template.ts';
import type { RedisClient } from '../shared/redis.ts';
import { bareHost, checkHostShape, PrivateTargetError, publicOnlyLookup, type Resolve } from '../webhooks/webhook-target.ts';
import {
  generateWithRetries,
  ItemRequestError,
  oneLine,
  type CallOutcome,
  type GenerateContext,
  type GenerateOutcome,
  type Generator,
  type ParseAnswer,
  type PreparedRequest,
} from './generation.ts';
import type { HttpTargetConfig } from './target.schema.ts';

/** An application's answer is an output of a few KB; anything this large is broken or hostile, and is not buffered. */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/** Default bound of one rendered request body (UTF-8 bytes of its JSON). */
export const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
/** How deep a body template may nest (a 64 KB template could otherwise nest 32 000 deep). */
const MAX_BODY_DEPTH = 256;
/**
 * Secrets shorter than this are not scrubbed from answers (`1` or `v2` would mangle every output),
 * nor shorter than MIN_REDACTED_MESSAGE_CHARS from messages. A credential is longer.
 */
const MIN_REDACTED_CHARS = 8;
const MIN_REDACTED_MESSAGE_CHARS = 4;

export interface HttpTargetRuntime {
  redis: RedisClient;
  /** The queue prefix: the endpoint's limiter keys live under it. */
  prefix: string;
  /** Largest rendered request body; a larger one is the item's error (default 1 MiB). */
  maxRequestBytes?: number;
  /**
   * The pool for endpoints with `allow_private` (default: one Agent per process).
   * Public-only endpoints always go through a pool whose socket lookup refuses
   * non-public addresses (one per process and `resolve`), whatever is passed here.
   */
  dispatcher?: Dispatcher;
  /** Name → addresses for the public-only check (default: the system's resolver; the tests bring their own). */
  resolve?: Resolve;
}

function agentOptions(): Agent.Options {
  // The Agent's own timeouts are off: timeout_ms bounds the whole request. Idle sockets are unref'd by undici.
  return { keepAliveTimeout: 4_000, headersTimeout: 0, bodyTimeout: 0, maxResponseSize: MAX_RESPONSE_BYTES };
}

/** A pool whose sockets only connect to public addresses (the DNS answer is judged inside the socket's lookup). */
export function createPublicOnlyAgent(resolve?: Resolve): Agent {
  return new Agent({ ...agentOptions(), connect: { lookup: publicOnlyLookup(resolve) } });
}

/** A pool that reaches any address (endpoints with allow_private). */
export function createTargetAgent(): Agent {
  return new Agent(agentOptions());
}

const systemResolveKey = {};
const publicAgents = new WeakMap<object, Agent>();
let privateAgent: Agent | undefined;

function publicAgentFor(resolve: Resolve | undefined): Agent {
  const key = resolve ?? systemResolveKey;
  let agent = publicAgents.get(key);
  if (!agent) publicAgents.set(key, (agent = createPublicOnlyAgent(resolve)));
  return agent;
}

// ---------------------------------------------------------------------------------------------
// The body template

const WHOLE_PLACEHOLDER = new RegExp(`^${PLACEHOLDER.source}$`);

/**
 * Renders the JSON template over the item: a string that is exactly one
 * placeholder becomes that JSON value (null when it leads nowhere); any other
 * string is interpolated. Keys are kept as they are. Throws ItemRequestError
 * when the body's JSON would exceed `maxBytes` (found while rendering, before
 * anything larger than the bound is built).
 */
export function renderJsonTemplate(template: unknown, item: EvalItem, maxBytes: number): unknown {
  let bytes = 0;
  const wholeValues = new Map<string, { value: unknown; bytes: number }>();
  const tooLarge = (): never => {
    throw new ItemRequestError(`the request body renders to more than ${maxBytes} bytes (the bound of one request)`);
  };
  const add = (n: number) => {
    bytes += n;
    if (bytes > maxBytes) tooLarge();
  };
  const walk = (node: unknown, depth: number): unknown => {
    if (depth > MAX_BODY_DEPTH) throw new ItemRequestError(`the body template nests more than ${MAX_BODY_DEPTH} levels deep`);
    if (typeof node === 'string') {
      const whole = WHOLE_PLACEHOLDER.exec(node);
      if (whole) {
        const name = whole[1]!;
        let v = wholeValues.get(name);
        if (v === undefined) {
          const value = valueAt(name, item) ?? null;
          v = { value, bytes: Buffer.byteLength(JSON.stringify(value) ?? 'null') };
          wholeValues.set(name, v);
        }
        add(v.bytes);
        return v.value;
      }
      let text: string;
      try {
        // The raw text is never longer than its JSON, so the remaining budget bounds it before it is built.
        text = renderTemplate(node, item, maxBytes - bytes);
      } catch (err) {
        if (err instanceof PromptTooLarge) tooLarge();
        throw err;
      }
      add(Buffer.byteLength(JSON.stringify(text)));
      return text;
    }
    if (Array.isArray(node)) {
      add(2);
      return node.map((v) => {
        add(1);
        return walk(v, depth + 1);
      });
    }
    if (node !== null && typeof node === 'object') {
      add(2);
      // fromEntries defines own properties: a "__proto__" key stays a key.
      return Object.fromEntries(
        Object.entries(node).map(([k, v]) => {
          add(Buffer.byteLength(JSON.stringify(k)) + 2);
          return [k, walk(v, depth + 1)];
        }),
      );
    }
    add(Buffer.byteLength(JSON.stringify(node) ?? 'null'));
    return node ?? null;
  };
  return walk(template, 0);
}

// ---------------------------------------------------------------------------------------------
// The answer

function parseJson(text: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/** The value at a dot path (numeric segments index arrays); undefined when it leads nowhere. */
export function valueAtPath(value: unknown, path: string): unknown {
  let cur = value;
  for (const part of path.split('.')) {
    if (Array.isArray(cur)) {
      cur = /^(0|[1-9]\d*)$/.test(part) && Number(part) < cur.length ? cur[Number(part)] : undefined;
    } else if (cur !== null && typeof cur === 'object') {
      cur = Object.hasOwn(cur, part) ? (cur as Record<string, unknown>)[part] : undefined;
    } else {
      return undefined;
    }
  }
  return cur;
}

const asOutput = (value: unknown): { ok: true; text: string; value?: unknown } =>
  typeof value === 'string' ? { ok: true, text: value } : { ok: true, text: JSON.stringify(value), value };

/** How an answer becomes the output: the value at `outputPath` (the answer must be JSON and have one), else the whole answer. */
export function parseAnswerAt(outputPath: string | undefined): ParseAnswer {
  return (answer) => {
    const json = answer.json ?? parseJson(answer.text);
    if (outputPath === undefined) return json ? asOutput(json.value) : { ok: true, text: answer.text };
    if (!json) return { ok: false, problem: `the answer is not JSON, so it has no "${outputPath}"` };
    const value = valueAtPath(json.value, outputPath);
    if (value === undefined) return { ok: false, problem: `the answer has nothing at "${outputPath}"` };
    return asOutput(value);
  };
}

// ---------------------------------------------------------------------------------------------
// Redaction

/** Replaces every secret (longest first, so a value is scrubbed before a part of it) in a text. */
function redactor(secrets: Iterable<string>): (text: string) => string {
  const list = [...new Set(secrets)].filter((s) => s !== '').sort((a, b) => b.length - a.length);
  if (list.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const s of list) if (out.includes(s)) out = out.replaceAll(s, '[redacted]');
    return out;
  };
}

/** The URL and its query values (a key in `?api_key=…`); the URL has no user:password (env refuses it). */
function urlSecrets(url: URL): string[] {
  const out = [url.href];
  for (const [, v] of url.searchParams) out.push(v, encodeURIComponent(v));
  return out;
}

/** Every header value, and its parts (the token of `Bearer <token>`, the items of a list). */
function headerSecrets(headers: Record<string, string> | undefined): string[] {
  const out: string[] = [];
  for (const value of Object.values(headers ?? {})) out.push(value, ...value.split(/[\s,;]+/));
  return out;
}

function failureMessage(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (e?.code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') return `response larger than ${MAX_RESPONSE_BYTES} bytes`;
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}

function isPrivateRefusal(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    if (e instanceof PrivateTargetError || (e as { name?: unknown }).name === 'PrivateTargetError') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const header = (value: string | string[] | undefined): string | null => (Array.isArray(value) ? value[0] : value) ?? null;

/** Reads the body up to `limit` bytes; null when it is larger (the rest is not read). */
async function readCapped(body: Dispatcher.ResponseData['body'], limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      return null;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

// ---------------------------------------------------------------------------------------------
// The target

/** What `call` gives back for a refused non-public endpoint: not retried, and reworded in `generate`. */
const PRIVATE_STATUS = 0;

class HttpRequest implements PreparedRequest {
  constructor(
    readonly cacheMaterial: unknown,
    readonly call: (signal: AbortSignal) => Promise<CallOutcome>,
  ) {}
}

export class HttpTarget implements Generator {
  private readonly label: string;
  private readonly origin: string;
  private readonly path: string;
  private readonly host: string;
  private readonly headers: Record<string, string>;
  private readonly dispatcher: Dispatcher;
  private readonly maxRequestBytes: number;
  private readonly parse: ParseAnswer;
  /** Scrubs header values and URL credentials (answers and messages). */
  private readonly redactSecrets: (text: string) => string;
  /** Also scrubs the URL itself and its host (transport messages). */
  private readonly redactMessage: (text: string) => string;
  private readonly privateMessage: string;
  /** The endpoint's shared limits (concurrency, rpm, the cooldown after a 429), across every worker process. */
  private readonly limits: ProviderLimiter;

  constructor(
    private readonly config: HttpTargetConfig,
    private readonly endpointName: string,
    private readonly endpoint: TargetEndpointConfig,
    runtime: HttpTargetRuntime,
  ) {
    this.label = `endpoint "${endpointName}"`;
    const url = new URL(endpoint.url);
    this.origin = url.origin;
    this.path = `${url.pathname}${url.search}`;
    this.host = bareHost(url);
    // The endpoint's headers win over ours (a content type of its own, say); lower-cased so they cannot be doubled.
    this.headers = { 'content-type': 'application/json' };
    for (const [k, v] of Object.entries(endpoint.headers ?? {})) this.headers[k.toLowerCase()] = v;
    this.dispatcher = endpoint.allow_private ? (runtime.dispatcher ?? (privateAgent ??= createTargetAgent())) : publicAgentFor(runtime.resolve);
    this.maxRequestBytes = runtime.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.parse = parseAnswerAt(config.output_path);
    const secrets = [...headerSecrets(endpoint.headers), ...urlSecrets(url)];
    this.redactSecrets = redactor(secrets.filter((s) => s.length >= MIN_REDACTED_CHARS));
    this.redactMessage = redactor([...secrets, url.origin, url.host, url.hostname, this.host].filter((s) => s.length >= MIN_REDACTED_MESSAGE_CHARS));
    this.limits = ProviderLimiter.for(runtime.redis, runtime.prefix, `target-${endpointName}`, {
      concurrency: endpoint.concurrency,
      rpm: endpoint.rpm,
      leaseMs: endpoint.timeout_ms + 5_000,
    });
    this.privateMessage = `the endpoint resolves to a non-public address (loopback, private, link-local or reserved), which is refused; set "allow_private": true on "${endpointName}" in EVALGATE_TARGETS to allow it`;
  }

  prepare(item: EvalItem): PreparedRequest {
    let body: unknown;
    let json: string;
    try {
      body = renderJsonTemplate(this.config.body, item, this.maxRequestBytes);
      json = JSON.stringify(body);
    } catch (err) {
      if (err instanceof ItemRequestError) throw err;
      throw new ItemRequestError(`the request body cannot be rendered: ${(err as Error)?.message ?? String(err)}`);
    }
    const bytes = Buffer.byteLength(json);
    if (bytes > this.maxRequestBytes) throw new ItemRequestError(`the request body renders to ${bytes} bytes, more than the bound of one request (${this.maxRequestBytes})`);
    const payload = Buffer.from(json);
    return new HttpRequest({ endpoint: this.endpointName, body, output_path: this.config.output_path ?? null }, (signal) => this.send(payload, signal));
  }

  async generate(request: PreparedRequest, ctx: GenerateContext): Promise<GenerateOutcome> {
    const { endpoint } = this;
    let answered = 0;
    let refused = false;
    const counted: PreparedRequest = {
      cacheMaterial: request.cacheMaterial,
      call: async (signal) => {
        const out = await request.call(signal);
        if (out.kind === 'answer') answered++;
        if (out.kind === 'rejected' && out.status === PRIVATE_STATUS && request instanceof HttpRequest) refused = true;
        return out;
      },
    };
    const outcome = await generateWithRetries(
      {
        label: this.label,
        maxAttempts: endpoint.max_attempts,
        limits: this.limits,
        parse: this.parse,
        // Priced per answered call (a 5xx or a timeout is not billed by the application).
        cost: () => (endpoint.usd_per_call === undefined ? null : endpoint.usd_per_call * answered),
        authHint: 'check its headers in EVALGATE_TARGETS',
      },
      counted,
      ctx,
    );
    if (refused && outcome.kind === 'error') return { ...outcome, error: `${this.label}: ${this.privateMessage}` };
    return outcome;
  }

  /** Sends one request and classifies its outcome. Rejects with the signal's reason when it aborts. */
  private async send(payload: Buffer, signal: AbortSignal): Promise<CallOutcome> {
    signal.throwIfAborted();
    const { timeout_ms } = this.endpoint;
    const rejectPrivate = (): CallOutcome => ({ kind: 'rejected', status: PRIVATE_STATUS, message: this.privateMessage });
    if (!this.endpoint.allow_private) {
      try {
        // An IP literal is never looked up: judged here. A name is judged on its DNS answer, in the socket's lookup.
        checkHostShape(this.host);
      } catch {
        return rejectPrivate();
      }
    }
    // undici takes an EventEmitter as its signal (cheaper than an AbortController); the timer covers connect, headers and body.
    const abort = new EventEmitter();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.emit('abort');
    }, timeout_ms);
    const unsubscribe = onAbort(signal, () => abort.emit('abort'));
    const noAnswer = (): CallOutcome => ({ kind: 'transient', message: `no answer within ${timeout_ms} ms` });
    const transient = (message: string): CallOutcome => ({ kind: 'transient', message: this.redactMessage(message) });
    try {
      let res: Dispatcher.ResponseData;
      try {
        res = await this.dispatcher.request({
          origin: this.origin,
          path: this.path,
          method: this.endpoint.method,
          headers: this.headers,
          body: payload,
          signal: abort,
        });
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        if (isPrivateRefusal(err)) return rejectPrivate();
        if (timedOut) return noAnswer();
        return transient(`request failed: ${failureMessage(err)}`);
      }
      let raw: Buffer | null;
      try {
        const declared = Number(header(res.headers['content-length']) ?? Number.NaN);
        if (declared > MAX_RESPONSE_BYTES) {
          res.body.destroy();
          raw = null;
        } else {
          raw = await readCapped(res.body, MAX_RESPONSE_BYTES);
        }
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        if (timedOut) return noAnswer();
        return transient(`response cut off: ${failureMessage(err)}`);
      }
      if (raw === null) return { kind: 'transient', message: `response larger than ${MAX_RESPONSE_BYTES} bytes` };
      const status = res.statusCode;
      const text = this.redactSecrets(raw.toString('utf8'));
      const snippet = (n = 200) => this.redactMessage(oneLine(text, n));
      if (status === 429) return { kind: 'rate_limited', retryAfterMs: parseRetryAfter(header(res.headers['retry-after'])) };
      if (status === 401 || status === 403) return { kind: 'auth', status, message: snippet() };
      if (status >= 500 || status === 408) return { kind: 'transient', message: `HTTP ${status}: ${snippet(100)}` };
      if (status >= 300 && status < 400) return { kind: 'rejected', status, message: 'a redirect, which is not followed (point the endpoint at the final URL)' };
      if (status >= 400 || status < 200) return { kind: 'rejected', status, message: snippet() };
      const json = parseJson(text);
      return { kind: 'answer', text, usage: { prompt_tokens: 0, completion_tokens: 0 }, finish_reason: null, ...(json ? { json } : {}) };
    } finally {
      clearTimeout(timer);
      unsubscribe();
    }
  }
}
