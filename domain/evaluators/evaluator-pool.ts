/**
 * Keeps tenant-controlled CPU off the event loop. An evaluation is first tried
 * on the caller's thread with a small share (INLINE_SHARE) of every bound in
 * ./limits.ts; work beyond that share, items larger than INLINE_MAX_ITEM_CHARS
 * and JSON schemas and regexes that are costly to compile go to a worker-thread pool
 * (tinypool), where the whole bound applies. The API checks configs at
 * creation the same way. So the HTTP server and the queue of a process wait
 * at most for one inline share, whatever a tenant sends. The composition root
 * owns a process's pool and closes it at shutdown.
 */
import { availableParallelism } from 'node:os';
import Tinypool from 'tinypool';
import { evaluatorConfigSchema, type EvaluatorConfig } from './evaluator.schema.ts';
import { validatedEvaluatorConfigSchema } from './evaluator-config.ts';
import type { ThreadIssue, ThreadScore } from './evaluator-thread.worker.ts';
import { compileEvaluator, type CompiledEvaluator, type DeterministicConfig, type EvalItem, type EvalResult } from './index.ts';
import { SCHEMA_COMPILE_MAX_COST, schemaCompileCost } from './json-schema.ts';
import { OffloadRequired, WorkBudget } from './work-budget.ts';

/** Share of each bound an evaluation may spend on the caller's event loop (a few ms at most). */
export const INLINE_SHARE = 1 / 32;
/** Items whose output and expected_output together are larger (characters, JSON nodes) are scored on a thread. */
export const INLINE_MAX_ITEM_CHARS = 256 * 1024;
/** JSON schemas that cost more than this to compile (see schemaCompileCost) are compiled only on a thread. */
export const INLINE_SCHEMA_COMPILE_COST = 50;
/**
 * Regex patterns compiled inline: RE2 compiles in time proportional to its
 * program, which repetition counts multiply (`[a-z]{999}` is a thousand
 * instructions, up to about 100 ms to compile with `i`); longer patterns or
 * counts of 100 and more are compiled on a thread.
 */
export function regexCompilesInline(pattern: string): boolean {
  return pattern.length <= 200 && !/\{\s*\d{3,}|,\s*\d{3,}\s*\}/.test(pattern);
}
/** Worker threads of the pool: one core is left to the event loop (the bounds keep one task near a second). */
export const POOL_THREADS = Math.max(1, availableParallelism() - 1);
/** A task running longer than this (the bounds make it unlikely) is stopped and its thread replaced. */
export const POOL_TASK_TIMEOUT_MS = 30_000;

/** Rough size of an item's compared fields, walked until `limit` is passed. */
export function itemChars(item: EvalItem, limit = INLINE_MAX_ITEM_CHARS): number {
  let n = 0;
  const stack: unknown[] = [item.output, item.expected_output];
  while (stack.length > 0 && n <= limit) {
    const v = stack.pop();
    if (typeof v === 'string') n += v.length;
    else if (Array.isArray(v)) {
      n += 1;
      for (const e of v) stack.push(e);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, e] of Object.entries(v)) {
        n += k.length + 1;
        stack.push(e);
      }
    } else n += 1;
  }
  return n;
}

export class EvaluatorPool {
  private pool: Tinypool | undefined;
  /** Tasks sent to threads, by name (observability and tests). */
  readonly sent = { score: 0, check: 0 };

  constructor(private readonly opts: { threads: number; taskTimeoutMs: number } = { threads: POOL_THREADS, taskTimeoutMs: POOL_TASK_TIMEOUT_MS }) {}

  private threads(): Tinypool {
    // Started on first use: most processes never meet an item too large for their event loop.
    this.pool ??= new Tinypool({
      filename: new URL('./evaluator-thread.boot.mjs', import.meta.url).href,
      minThreads: 0,
      maxThreads: this.opts.threads,
      idleTimeout: 60_000,
    });
    return this.pool;
  }

  private async run<T>(name: 'score' | 'check', task: unknown): Promise<T> {
    this.sent[name] += 1;
    const signal = AbortSignal.timeout(this.opts.taskTimeoutMs);
    try {
      return (await this.threads().run(task, { name, signal })) as T;
    } catch (e) {
      if (signal.aborted) throw new Error(`evaluation stopped after ${this.opts.taskTimeoutMs} ms on an evaluator thread`, { cause: e });
      throw e;
    }
  }

  /** Scores one item on a thread with the full bounds; a per-item error is thrown as an Error with the thread's message. */
  async score(config: DeterministicConfig, item: EvalItem): Promise<EvalResult> {
    const out = await this.run<ThreadScore>('score', { config, item });
    if (!out.ok) throw new Error(out.message);
    return out.result;
  }

  /** The engine checks (regex, JSON schema) of a config on a thread. */
  check(config: EvaluatorConfig): Promise<ThreadIssue[]> {
    return this.run<ThreadIssue[]>('check', { config });
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    await p?.destroy();
  }
}

/** What `compileScorer` returns: a result at once when the item was cheap, else a promise of the thread's. */
export type Scorer = (item: EvalItem) => EvalResult | Promise<EvalResult>;

/**
 * The evaluator of a config for a process that serves other work: cheap items
 * are scored inline with INLINE_SHARE of each bound, the rest on the pool.
 * Throws like compileEvaluator for an invalid config, except that a JSON schema
 * too costly to compile inline is compiled (and may fail) on the thread, per item.
 */
export function compileScorer(config: DeterministicConfig, pool: EvaluatorPool): Scorer {
  let inline: CompiledEvaluator | undefined;
  if (config.type === 'json_schema') {
    const cost = schemaCompileCost(config.schema);
    if (cost > SCHEMA_COMPILE_MAX_COST) compileEvaluator(config); // throws the refusal
    if (cost <= INLINE_SCHEMA_COMPILE_COST) inline = compileEvaluator(config);
    else evaluatorConfigSchema.parse(config);
  } else if (config.type === 'regex' && !regexCompilesInline(config.pattern)) {
    evaluatorConfigSchema.parse(config);
  } else {
    inline = compileEvaluator(config);
  }
  return (item) => {
    if (inline !== undefined && itemChars(item) <= INLINE_MAX_ITEM_CHARS) {
      try {
        return inline(item, new WorkBudget(INLINE_SHARE));
      } catch (e) {
        if (!(e instanceof OffloadRequired)) throw e;
      }
    }
    return pool.score(config, item);
  };
}

/**
 * Engine checks of a user's config (regex compiles under RE2, JSON schema under
 * ajv), with issue paths relative to the config. A JSON schema beyond
 * SCHEMA_COMPILE_MAX_COST is refused before any compile; one beyond
 * INLINE_SCHEMA_COMPILE_COST is compiled on the pool.
 */
export async function checkEvaluatorEngines(config: EvaluatorConfig, pool: EvaluatorPool): Promise<ThreadIssue[]> {
  if (config.type === 'json_schema') {
    const cost = schemaCompileCost(config.schema);
    if (cost > SCHEMA_COMPILE_MAX_COST) {
      return [{ path: ['schema'], message: `invalid JSON schema: schema too complex to compile (cost ${cost} > ${SCHEMA_COMPILE_MAX_COST}: 1 per subschema, 4 per pattern)` }];
    }
    if (cost > INLINE_SCHEMA_COMPILE_COST) return pool.check(config);
  }
  if (config.type === 'regex' && !regexCompilesInline(config.pattern)) return pool.check(config);
  const r = validatedEvaluatorConfigSchema.safeParse(config);
  return r.success ? [] : r.error.issues.map((i) => ({ path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)), message: i.message }));
}
