/**
 * Scores one item with an LLM judge: render the messages, wait for the
 * provider's shared limits, call, read the answer. The retry policy lives
 * here so that the item's terminal `error` is decided only after its last
 * attempt: 429s wait (Retry-After, shared cooldown) without using up an
 * attempt; 5xx, timeouts and unparsable answers retry with exponential
 * backoff and jitter; 401/403 is a run-level failure.
 */
import type { Dispatcher } from 'undici';
import type { RedisClient as Redis } from '../../shared/redis.ts';
import type { ProviderConfig } from '../../../server/env.ts';
import type { EvalItem } from '../types.ts';
import { sleep } from './abort.ts';
import { answerSpec, parseAnswer } from './judge-answer.ts';
import type { LlmJudgeConfig } from './llm-judge.schema.ts';
import { callChatCompletions, type Usage } from './provider-client.ts';
import { ProviderLimiter } from './provider-limiter.ts';
import { PromptTooLarge, renderPrompt } from './template.ts';

/** The provider refused our credentials: no item of the run can succeed. */
export class ProviderAuthError extends Error {
  override name = 'ProviderAuthError';
}

export type JudgeOutcome =
  | { kind: 'scored'; score: number; passed: boolean; reason: string; attempts: number; usage: Usage; cost_usd: number | null }
  | { kind: 'error'; error: string; attempts: number; usage: Usage; cost_usd: number | null };

/** Longest a single item may keep waiting on 429s before it is given up as an error. */
const RATE_LIMIT_BUDGET_MS = 10 * 60_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export function costOf(provider: ProviderConfig, usage: Usage): number | null {
  if (provider.prompt_usd_per_1m === undefined && provider.completion_usd_per_1m === undefined) return null;
  return (usage.prompt_tokens * (provider.prompt_usd_per_1m ?? 0) + usage.completion_tokens * (provider.completion_usd_per_1m ?? 0)) / 1e6;
}

/** Where a judge runs: the Redis of the shared provider limits, and the process's provider agent. */
export interface JudgeRuntime {
  redis: Redis;
  /** The queue prefix the limiter's keys live under. */
  prefix: string;
  /** MAX_PROMPT_BYTES: a prompt that would render larger is the item's error (default: no bound). */
  maxPromptBytes?: number;
  /** The process's provider agent (createProviderAgent); a shared fallback when omitted. */
  dispatcher?: Dispatcher;
}

export class LlmJudge {
  private readonly limiter: ProviderLimiter;
  private readonly spec: ReturnType<typeof answerSpec>;
  private readonly maxPromptBytes: number;
  private readonly dispatcher: Dispatcher | undefined;

  constructor(
    readonly config: LlmJudgeConfig,
    private readonly providerName: string,
    private readonly provider: ProviderConfig,
    runtime: JudgeRuntime,
  ) {
    this.maxPromptBytes = runtime.maxPromptBytes ?? Number.POSITIVE_INFINITY;
    this.dispatcher = runtime.dispatcher;
    this.limiter = ProviderLimiter.for(runtime.redis, runtime.prefix, providerName, {
      concurrency: provider.concurrency,
      rpm: provider.rpm,
      leaseMs: provider.timeout_ms + 5_000,
    });
    this.spec = answerSpec(config.output);
  }

  private request(item: EvalItem) {
    const contents = renderPrompt(this.config.messages.map((m) => m.content), item, this.maxPromptBytes);
    const messages = this.config.messages.map((m, i) => ({ role: m.role, content: contents[i]! }));
    messages.push({ role: 'system', content: this.spec.instruction });
    const format = this.provider.response_format;
    const responseFormat =
      format === 'json_schema'
        ? { type: 'json_schema', json_schema: { name: 'judgement', strict: true, schema: this.spec.schema } }
        : format === 'json_object'
          ? { type: 'json_object' }
          : undefined;
    return { model: this.config.model, messages, params: this.config.params, responseFormat };
  }

  /**
   * Judges one item. Throws ProviderAuthError (run-level) or the signal's reason when aborted.
   * `priority`: this process serves provider slots to smaller values first (a chunk's start
   * order, so the oldest chunk finishes first); equal values first come, first served.
   */
  async judge(item: EvalItem, signal: AbortSignal, priority = 0): Promise<JudgeOutcome> {
    const usage: Usage = { prompt_tokens: 0, completion_tokens: 0 };
    let req;
    try {
      req = this.request(item);
    } catch (e) {
      if (!(e instanceof PromptTooLarge)) throw e;
      return { kind: 'error', error: e.message, attempts: 0, usage, cost_usd: null };
    }
    const maxAttempts = this.provider.max_attempts;
    let attempts = 0;
    let rateLimitedFor = 0;
    let lastProblem = 'no attempt made';
    type Bare = { kind: 'scored'; score: number; passed: boolean; reason: string } | { kind: 'error'; error: string };
    const finish = (o: Bare): JudgeOutcome => ({ ...o, attempts, usage, cost_usd: costOf(this.provider, usage) });

    while (attempts < maxAttempts) {
      const release = await this.limiter.acquire(signal, priority);
      let out;
      try {
        out = await callChatCompletions(this.provider, req, signal, this.dispatcher);
      } finally {
        await release();
      }
      if (out.kind === 'rate_limited') {
        const wait = Math.min(out.retryAfterMs ?? BACKOFF_BASE_MS * 2 ** Math.min(6, rateLimitedFor / 1000), 60_000);
        rateLimitedFor += wait;
        if (rateLimitedFor > RATE_LIMIT_BUDGET_MS) {
          attempts++;
          lastProblem = `provider "${this.providerName}" kept answering 429 for ${Math.round(rateLimitedFor / 1000)} s`;
          break;
        }
        await this.limiter.coolDown(wait).catch(() => undefined);
        await sleep(wait + Math.random() * 100, signal);
        continue;
      }
      attempts++;
      if (out.kind === 'auth') {
        throw new ProviderAuthError(
          `provider "${this.providerName}" refused the request with HTTP ${out.status} (check its api_key in EVALGATE_PROVIDERS): ${out.message}`,
        );
      }
      if (out.kind === 'rejected') {
        return finish({ kind: 'error', error: `provider "${this.providerName}" rejected the request with HTTP ${out.status}: ${out.message}` });
      }
      if (out.kind === 'transient') {
        lastProblem = `provider "${this.providerName}": ${out.message}`;
      } else {
        usage.prompt_tokens += out.usage.prompt_tokens;
        usage.completion_tokens += out.usage.completion_tokens;
        const parsed = parseAnswer(out.text, this.config.output);
        if (parsed.ok) {
          return finish({
            kind: 'scored',
            score: parsed.score,
            passed: parsed.score >= this.config.pass_threshold,
            reason: parsed.reasoning.slice(0, 4_000),
          });
        }
        const raw = out.text.replace(/\s+/g, ' ').trim();
        lastProblem = `unparsable judge answer (${parsed.problem}): "${raw.slice(0, 200)}${raw.length > 200 ? '…' : ''}"`;
      }
      if (attempts < maxAttempts) {
        const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempts - 1));
        await sleep(backoff / 2 + Math.random() * (backoff / 2), signal);
      }
    }
    return finish({ kind: 'error', error: `${lastProblem} (after ${attempts} attempt${attempts === 1 ? '' : 's'})` });
  }
}
