/**
 * Targets: checking a run's target when it is scheduled (the API's
 * configuration) and compiling it into a Generator in the worker (the
 * worker's configuration; a provider or endpoint missing there fails the run).
 */
import type { Env } from '../../server/env.ts';
import { DomainError } from '../shared/errors.ts';
import { PLACEHOLDER } from '../evaluators/llm-judge/template.ts';
import { ChatCompletionTarget, type TargetRuntime } from './chat-target.ts';
import { HttpTarget } from './http-target.ts';
import type { Generator } from './generation.ts';
import type { TargetConfig } from './target.schema.ts';

export { targetSchema, type TargetConfig } from './target.schema.ts';
export type { Generator, GenerateOutcome, Sample, GenerationError } from './generation.ts';
export { ItemRequestError, TargetAuthError } from './generation.ts';
export type { TargetRuntime } from './chat-target.ts';

/** The run's target cannot be built on this worker (a provider or endpoint not configured): the run fails. */
export class TargetConfigError extends Error {
  override name = 'TargetConfigError';
}

/** Every template string of a target (message contents, the strings of an HTTP body at any depth). */
function templatesOf(target: TargetConfig): string[] {
  if (target.type === 'chat_completion') return (target.messages ?? []).map((m) => m.content);
  if (target.type !== 'http') return [];
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(target.body);
  return out;
}

/** Why the target cannot run here, or null. */
function problemOf(env: Env, target: TargetConfig): string | null {
  if (target.type === 'chat_completion' && !env.EVALGATE_PROVIDERS[target.provider]) {
    return `target.provider: "${target.provider}" is not configured (EVALGATE_PROVIDERS)`;
  }
  if (target.type === 'http' && !env.EVALGATE_TARGETS[target.endpoint]) {
    return `target.endpoint: "${target.endpoint}" is not configured (EVALGATE_TARGETS)`;
  }
  return null;
}

/** Refuses (400) a target this deployment cannot run, or whose templates read the output it is to produce. */
export function checkTarget(env: Env, target: TargetConfig): void {
  const problem = problemOf(env, target);
  if (problem) throw new DomainError('BAD_REQUEST', `invalid input: ${problem}`);
  for (const t of templatesOf(target)) {
    for (const m of t.matchAll(PLACEHOLDER)) {
      if (m[1]!.split('.')[0] === 'output') {
        throw new DomainError('BAD_REQUEST', `invalid input: target: {{${m[1]}}} is what the target produces; templates may use {{input}}, {{expected_output}} and {{metadata}}`);
      }
    }
  }
}

/** The run's generator; null for dataset_output. Throws TargetConfigError when this worker cannot run it. */
export function compileTarget(env: Env, target: TargetConfig, runtime: TargetRuntime): Generator | null {
  if (target.type === 'dataset_output') return null;
  const problem = problemOf(env, target);
  if (problem) throw new TargetConfigError(`${problem} on this worker`);
  if (target.type === 'chat_completion') return new ChatCompletionTarget(target, target.provider, env.EVALGATE_PROVIDERS[target.provider]!, runtime);
  return new HttpTarget(target, target.endpoint, env.EVALGATE_TARGETS[target.endpoint]!, {
    redis: runtime.redis,
    prefix: runtime.prefix,
    maxRequestBytes: runtime.maxPromptBytes,
    dispatcher: runtime.dispatcher,
  });
}
