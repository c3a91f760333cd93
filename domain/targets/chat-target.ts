/**
 * The `chat_completion` target: one OpenAI-compatible chat-completions call
 * per item, to a provider of EVALGATE_PROVIDERS (the judge's registry). It
 * queues on the same Redis-shared limiter as the judge of that provider, so
 * generation and judging share one budget (concurrency, rpm, the cooldown
 * after a 429).
 */
import type { Dispatcher } from 'undici';
import type { ProviderConfig } from '../../server/env.ts';
import type { RedisClient } from '../shared/redis.ts';
import type { EvalItem } from '../evaluators/types.ts';
import { costOf } from '../evaluators/llm-judge/llm-judge.runtime.ts';
import { callChatCompletions, type ChatRequest } from '../evaluators/llm-judge/provider-client.ts';
import { ProviderLimiter } from '../evaluators/llm-judge/provider-limiter.ts';
import { PromptTooLarge, renderPrompt } from '../evaluators/llm-judge/template.ts';
import {
  generateWithRetries,
  ItemRequestError,
  type GenerateContext,
  type GenerateOutcome,
  type Generator,
  type ParseAnswer,
  type PreparedRequest,
  type RetryPolicy,
} from './generation.ts';
import type { ChatCompletionTargetConfig } from './target.schema.ts';

export interface TargetRuntime {
  redis: RedisClient;
  /** The queue prefix the limiters' keys live under. */
  prefix: string;
  /** MAX_PROMPT_BYTES: a request that would render larger is the item's error. */
  maxPromptBytes?: number;
  dispatcher?: Dispatcher;
}

const ROLES = new Set(['system', 'user', 'assistant', 'developer', 'tool']);
const MAX_INPUT_MESSAGES = 500;

/** An answer's JSON, tolerating a code fence around it. */
export function parseJsonAnswer(text: string): { ok: true; value: unknown } | { ok: false; problem: string } {
  let t = text.trim();
  const fence = /^```[A-Za-z0-9_-]*\s*\n([\s\S]*?)\n?```$/.exec(t);
  if (fence) t = fence[1]!.trim();
  try {
    return { ok: true, value: JSON.parse(t) as unknown };
  } catch {
    return { ok: false, problem: 'not JSON' };
  }
}

export class ChatCompletionTarget implements Generator {
  private readonly policy: RetryPolicy;
  private readonly maxBytes: number;

  constructor(
    private readonly config: ChatCompletionTargetConfig,
    private readonly providerName: string,
    private readonly provider: ProviderConfig,
    private readonly runtime: TargetRuntime,
  ) {
    this.maxBytes = runtime.maxPromptBytes ?? Number.POSITIVE_INFINITY;
    const parse: ParseAnswer =
      config.output === 'json'
        ? (a) => {
            const p = parseJsonAnswer(a.text);
            return p.ok ? { ok: true, text: a.text, value: p.value } : p;
          }
        : (a) => ({ ok: true, text: a.text });
    this.policy = {
      label: `provider "${providerName}"`,
      maxAttempts: provider.max_attempts,
      // the judge's limiter for this provider: one budget for generation and judging
      limits: ProviderLimiter.for(runtime.redis, runtime.prefix, providerName, {
        concurrency: provider.concurrency,
        rpm: provider.rpm,
        leaseMs: provider.timeout_ms + 5_000,
      }),
      parse,
      cost: (usage) => costOf(provider, usage),
      authHint: 'check its api_key in EVALGATE_PROVIDERS',
    };
  }

  private messages(item: EvalItem): ChatRequest['messages'] {
    if (this.config.messages_from === 'input') {
      const input = item.input;
      if (!Array.isArray(input) || input.length === 0 || input.length > MAX_INPUT_MESSAGES) {
        throw new ItemRequestError(`messages_from "input": the item's input must be a non-empty array of at most ${MAX_INPUT_MESSAGES} messages`);
      }
      for (const [i, m] of input.entries()) {
        const ok = m !== null && typeof m === 'object' && !Array.isArray(m) && ROLES.has((m as { role?: unknown }).role as string) && 'content' in m;
        if (!ok) throw new ItemRequestError(`messages_from "input": message ${i} is not {role, content} with role one of ${[...ROLES].join(', ')}`);
      }
      const bytes = Buffer.byteLength(JSON.stringify(input));
      if (bytes > this.maxBytes) throw new ItemRequestError(new PromptTooLarge(bytes, this.maxBytes).message);
      return input as ChatRequest['messages'];
    }
    const templates = this.config.messages!;
    let contents: string[];
    try {
      contents = renderPrompt(templates.map((m) => m.content), item, this.maxBytes);
    } catch (err) {
      if (err instanceof PromptTooLarge) throw new ItemRequestError(err.message);
      throw err;
    }
    return templates.map((m, i) => ({ role: m.role, content: contents[i]! }));
  }

  prepare(item: EvalItem): PreparedRequest {
    const req: ChatRequest = { model: this.config.model, messages: this.messages(item), params: this.config.params };
    return {
      cacheMaterial: { type: 'chat_completion', provider: this.providerName, model: req.model, messages: req.messages, params: req.params ?? null, output: this.config.output },
      call: (signal) => callChatCompletions(this.provider, req, signal, this.runtime.dispatcher),
    };
  }

  generate(request: PreparedRequest, ctx: GenerateContext): Promise<GenerateOutcome> {
    return generateWithRetries(this.policy, request, ctx);
  }
}
