/**
 * What generating one item's output means, for every target type: the
 * outcome (a sample, or the item's error after its last attempt), the port
 * through which each provider call is counted in Postgres before it is sent
 * (so that calls per item never exceed the attempts recorded, even across
 * worker crashes), and the one retry loop both generators share.
 *
 * The loop's policy is the judge's: 429s wait (Retry-After, a shared
 * cooldown) without using up an attempt of the policy; 5xx, 408, timeouts,
 * lost connections and unparsable answers back off exponentially with
 * jitter; another 4xx is the item's error at once; 401/403 fail the run.
 * Every call, 429s included, is claimed first: `attempts` on a sample is the
 * number of requests sent (or about to be sent when a worker died).
 */
import type { EvalItem } from '../evaluators/types.ts';
import { sleep } from '../evaluators/llm-judge/abort.ts';

export type Usage = { prompt_tokens: number; completion_tokens: number };

/** A successful generation. `value` is the parsed output when the target asks for JSON (or answers JSON); `text` is always set. */
export interface Sample {
  kind: 'sample';
  text: string;
  value?: unknown;
  finish_reason: string | null;
  usage: Usage;
  cost_usd: number | null;
  /** Requests sent for this sample (0 when it came from the cache). */
  attempts: number;
  latency_ms: number;
  cached: boolean;
}

/** Generation failed after its last attempt (or could not be attempted): the item's result is `error`. */
export interface GenerationError {
  kind: 'error';
  error: string;
  /** The start of the last raw answer, when it could not be parsed. */
  raw_start: string | null;
  finish_reason: string | null;
  usage: Usage;
  cost_usd: number | null;
  attempts: number;
  latency_ms: number;
}

export type GenerateOutcome = Sample | GenerationError;

/** The item cannot even be turned into a request (a template over a missing field, input that is not messages, a prompt too large). */
export class ItemRequestError extends Error {
  override name = 'ItemRequestError';
}

/** The target refused our credentials (401/403): no item of the run can succeed, so the run fails. */
export class TargetAuthError extends Error {
  override name = 'TargetAuthError';
}

/** One request's outcome, classified for the loop. */
export type CallOutcome =
  | { kind: 'answer'; text: string; usage: Usage; finish_reason: string | null; /** set when the transport already parsed JSON */ json?: { value: unknown } }
  /** 429: wait this long, then try again without using up an attempt */
  | { kind: 'rate_limited'; retryAfterMs: number | null }
  /** 5xx, 408, timeouts, lost connections, oversized responses: back off and retry */
  | { kind: 'transient'; message: string }
  /** 401/403: the credentials are wrong for every item; the run fails */
  | { kind: 'auth'; status: number; message: string }
  /** other 4xx: this item's request is wrong; retrying cannot help */
  | { kind: 'rejected'; status: number; message: string };

/** How an answer's text becomes the sample's output: ok with the value to store (undefined for plain text), or a problem (retried). */
export type ParseAnswer = (answer: Extract<CallOutcome, { kind: 'answer' }>) => { ok: true; text: string; value?: unknown } | { ok: false; problem: string };

/**
 * Counts the next call in Postgres before it is sent. Resolves to the number
 * of calls claimed for this sample so far (this one included), or null when
 * the item may not be called again (its attempts are used up: earlier
 * deliveries of the chunk sent them and died).
 */
export type ClaimAttempt = () => Promise<number | null>;

/** A slot of the target's shared limits (concurrency, rpm, cooldown after a 429), as the provider limiter gives them. */
export interface Limits {
  acquire(signal: AbortSignal, priority: number): Promise<() => Promise<void>>;
  coolDown(ms: number): Promise<void>;
}

export interface GenerateContext {
  signal: AbortSignal;
  /** Smaller first (the chunk's start order), as for the judge. */
  priority: number;
  claim: ClaimAttempt;
  /** Called with a slot held, just before a request is sent: throwing stops the item there (a run over its budget starts no new call). */
  beforeCall?: () => void;
}

/** A request rendered for one item: what is sent, and what identifies it in the sample cache. */
export interface PreparedRequest {
  /** JSON-serialisable: everything that determines the answer (the target's config by name, the rendered request). */
  cacheMaterial: unknown;
  /** Sends the request once. */
  call(signal: AbortSignal): Promise<CallOutcome>;
}

/** A target of a run, compiled once per run: renders items into requests and generates their samples. */
export interface Generator {
  /** Renders the item's request. Throws ItemRequestError for an item that cannot be sent. */
  prepare(item: EvalItem): PreparedRequest;
  generate(request: PreparedRequest, ctx: GenerateContext): Promise<GenerateOutcome>;
}

export interface RetryPolicy {
  /** A name for messages: `provider "openai"`, `endpoint "my-app"`. */
  label: string;
  /** Attempts per item for transient problems (429s wait without using one up). */
  maxAttempts: number;
  limits: Limits;
  parse: ParseAnswer;
  cost: (usage: Usage) => number | null;
  /** The hint for a 401/403, e.g. `check its api_key in EVALGATE_PROVIDERS`. */
  authHint: string;
}

/** Longest a single item may keep waiting on 429s before it is given up as an error. */
export const RATE_LIMIT_BUDGET_MS = 10 * 60_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** How much of an unparsable answer a sample keeps. */
export const RAW_START_CHARS = 500;

export function oneLine(text: string, n = 200): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/**
 * Sends `request` until it yields a sample, its attempts are used up, or the
 * signal aborts (then it rejects with the signal's reason). Throws
 * TargetAuthError on 401/403.
 */
export async function generateWithRetries(policy: RetryPolicy, request: PreparedRequest, ctx: GenerateContext): Promise<GenerateOutcome> {
  const t0 = performance.now();
  const usage: Usage = { prompt_tokens: 0, completion_tokens: 0 };
  let attempts = 0; // attempts of the policy (429s excluded), this delivery
  let claimed = 0; // calls counted in Postgres, earlier deliveries included
  let rateLimitedFor = 0;
  let lastProblem = 'no attempt made';
  let rawStart: string | null = null;
  let finishReason: string | null = null;
  const fail = (error: string): GenerationError => ({
    kind: 'error',
    error,
    raw_start: rawStart,
    finish_reason: finishReason,
    usage,
    cost_usd: policy.cost(usage),
    attempts: claimed,
    latency_ms: performance.now() - t0,
  });

  let prior: number | null = null; // calls claimed by earlier deliveries, which died mid-call: each counts as a used attempt
  while (prior === null || prior + attempts < policy.maxAttempts) {
    const n = await ctx.claim();
    if (n === null) return fail(`${policy.label}: the item's attempts are used up (after ${claimed} requests)`);
    claimed = n;
    if (prior === null) {
      prior = n - 1;
      if (prior >= policy.maxAttempts) return fail(`${policy.label}: earlier deliveries of this item sent ${prior} requests and were lost mid-call`);
    }
    const release = await policy.limits.acquire(ctx.signal, ctx.priority);
    let out: CallOutcome;
    try {
      ctx.beforeCall?.();
      out = await request.call(ctx.signal);
    } finally {
      await release();
    }
    if (out.kind === 'rate_limited') {
      const wait = Math.min(out.retryAfterMs ?? BACKOFF_BASE_MS * 2 ** Math.min(6, rateLimitedFor / 1000), 60_000);
      rateLimitedFor += wait;
      if (rateLimitedFor > RATE_LIMIT_BUDGET_MS) {
        lastProblem = `${policy.label} kept answering 429 for ${Math.round(rateLimitedFor / 1000)} s`;
        return fail(`${lastProblem} (after ${claimed} requests)`);
      }
      await policy.limits.coolDown(wait).catch(() => undefined);
      await sleep(wait + Math.random() * 100, ctx.signal);
      continue;
    }
    attempts++;
    if (out.kind === 'auth') throw new TargetAuthError(`${policy.label} refused the request with HTTP ${out.status} (${policy.authHint}): ${out.message}`);
    if (out.kind === 'rejected') return fail(`${policy.label} rejected the request with HTTP ${out.status}: ${out.message}`);
    if (out.kind === 'transient') {
      lastProblem = `${policy.label}: ${out.message}`;
    } else {
      usage.prompt_tokens += out.usage.prompt_tokens;
      usage.completion_tokens += out.usage.completion_tokens;
      finishReason = out.finish_reason;
      const parsed = policy.parse(out);
      if (parsed.ok) {
        return {
          kind: 'sample',
          text: parsed.text,
          ...(parsed.value !== undefined ? { value: parsed.value } : {}),
          finish_reason: out.finish_reason,
          usage,
          cost_usd: policy.cost(usage),
          attempts: claimed,
          latency_ms: performance.now() - t0,
          cached: false,
        };
      }
      rawStart = out.text.slice(0, RAW_START_CHARS);
      lastProblem = `${policy.label}: unparsable answer (${parsed.problem}): "${oneLine(out.text)}"`;
    }
    if (prior + attempts < policy.maxAttempts) {
      const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempts - 1));
      await sleep(backoff / 2 + Math.random() * (backoff / 2), ctx.signal);
    }
  }
  return fail(`${lastProblem} (after ${claimed} attempt${claimed === 1 ? '' : 's'})`);
}
