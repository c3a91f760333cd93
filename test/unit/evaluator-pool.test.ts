/**
 * Work a tenant's input makes expensive leaves the event loop: an item is
 * scored inline with a small share of each bound, and whatever needs more is
 * scored on the worker-thread pool with the whole bound. Counted by the tasks
 * the pool received, never by time.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkEvaluatorEngines,
  compileScorer,
  EvaluatorPool,
  INLINE_MAX_ITEM_CHARS,
  INLINE_SCHEMA_COMPILE_COST,
} from '../../domain/evaluators/evaluator-pool.ts';
import { compileEvaluator, evaluatorConfigSchema, type DeterministicConfig } from '../../domain/evaluators/index.ts';
import { SCHEMA_COMPILE_MAX_COST, schemaCompileCost } from '../../domain/evaluators/json-schema.ts';
import { PromptTooLarge, renderPrompt } from '../../domain/evaluators/llm-judge/template.ts';
import { item } from '../helpers/evaluators.ts';

const pool = new EvaluatorPool({ threads: 1, taskTimeoutMs: 60_000 });
afterAll(() => pool.close());

/** Shape only: the engine checks are what some tests are about. */
const cfg = (c: unknown): DeterministicConfig => evaluatorConfigSchema.parse(c) as DeterministicConfig;

function words(n: number, swap = ''): string {
  return Array.from({ length: n }, (_, i) => (swap && i % 10 === 3 ? swap : `w${i % 97}`)).join(' ');
}

describe('compileScorer', () => {
  it('scores a cheap item inline, synchronously', () => {
    const before = pool.sent.score;
    const r = compileScorer(cfg({ type: 'contains', value: 'b' }), pool)(item('abc'));
    expect(r).toMatchObject({ score: 1, passed: true });
    expect(r).not.toBeInstanceOf(Promise);
    expect(pool.sent.score).toBe(before);
  });

  it('sends an item larger than INLINE_MAX_ITEM_CHARS to a thread, with the same result', async () => {
    const before = pool.sent.score;
    const c = cfg({ type: 'token_f1' });
    const it_ = item(words(INLINE_MAX_ITEM_CHARS / 3), words(INLINE_MAX_ITEM_CHARS / 3, 'zz'));
    const r = compileScorer(c, pool)(it_);
    expect(r).toBeInstanceOf(Promise);
    expect(await r).toEqual(compileEvaluator(c)(it_));
    expect(pool.sent.score).toBe(before + 1);
  });

  it('sends a small item whose work passes the inline share to a thread (levenshtein cells)', async () => {
    const before = pool.sent.score;
    const c = cfg({ type: 'levenshtein' });
    const a = 'ab'.repeat(6_000);
    const it_ = item(a, `${a}c`); // 12,000 × 12,001 cells: within the bound, far past 1/32 of it
    const r = await compileScorer(c, pool)(it_);
    expect(r).toEqual(compileEvaluator(c)(it_));
    expect(pool.sent.score).toBe(before + 1);
  });

  it('a refusal on the thread is the item error with the bound in it', async () => {
    const c = cfg({ type: 'contains_all', values: Array.from({ length: 1_000 }, (_, i) => `v${i}`) });
    await expect(compileScorer(c, pool)(item('x'.repeat(900_000)))).resolves.toMatchObject({ score: 0 }); // 9e8: within the bound, on a thread
    await expect(compileScorer(c, pool)(item('x'.repeat(1_000_001)))).rejects.toThrow(/^inputs too large for contains_all \(1000001 chars × 1000 values > 1000000000\)$/);
  });

  it('a JSON schema costly to compile is compiled and validated on the thread only', async () => {
    const props = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`p${i}`, { type: 'string', pattern: `^x${i}` }]));
    const schema = { type: 'object', properties: props };
    expect(schemaCompileCost(schema)).toBeGreaterThan(INLINE_SCHEMA_COMPILE_COST);
    const before = pool.sent.score;
    const score = compileScorer(cfg({ type: 'json_schema', schema }), pool);
    expect(pool.sent.score).toBe(before);
    expect(await score(item({ p1: 'x1' }))).toMatchObject({ score: 1 });
    expect(await score(item({ p1: 'y' }))).toMatchObject({ score: 0 });
    expect(pool.sent.score).toBe(before + 2);
  });
});

describe('checkEvaluatorEngines (the API: configs checked at creation)', () => {
  it('refuses a schema past SCHEMA_COMPILE_MAX_COST before compiling anything', async () => {
    const props = Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`p${i}`, { type: 'string', pattern: `^(a|b${i})+$` }]));
    const schema = { type: 'object', properties: props };
    const before = pool.sent.check;
    const issues = await checkEvaluatorEngines(cfg({ type: 'json_schema', schema }), pool);
    expect(issues).toEqual([{ path: ['schema'], message: expect.stringMatching(/^invalid JSON schema: schema too complex to compile \(cost 10001 > 5000/) }]);
    expect(SCHEMA_COMPILE_MAX_COST).toBe(5_000);
    expect(pool.sent.check).toBe(before);
  });

  it('compiles a mid-sized schema on the thread and reports its issues there', async () => {
    const props = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`p${i}`, { type: 'string', pattern: `^x${i}` }]));
    const before = pool.sent.check;
    expect(await checkEvaluatorEngines(cfg({ type: 'json_schema', schema: { type: 'object', properties: props } }), pool)).toEqual([]);
    const bad = { type: 'object', properties: { ...props, broken: { type: 'string', pattern: '(' } } };
    const issues = await checkEvaluatorEngines({ type: 'json_schema', threshold: 1, schema: bad }, pool);
    expect(issues[0]).toMatchObject({ path: ['schema'], message: expect.stringMatching(/^invalid JSON schema: invalid regular expression/) });
    expect(pool.sent.check).toBe(before + 2);
  });
});

describe('renderPrompt: MAX_PROMPT_BYTES', () => {
  it('refuses a template repeating a large output, without building it', () => {
    const output = 'é'.repeat(512 * 1024); // 1 MiB of UTF-8
    const template = `Judge:${'{{output}}'.repeat(10_000)}`;
    let err: unknown;
    try {
      renderPrompt(['system text', template], item(output), 2 * 1024 * 1024);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PromptTooLarge);
    const bytes = 'system text'.length + 'Judge:'.length + 10_000 * 1024 * 1024;
    // ~10 GiB: longer than any string V8 can hold, so it cannot have been built first.
    expect((err as PromptTooLarge).bytes).toBe(bytes);
    expect((err as Error).message).toBe(`prompt renders to ${bytes} bytes, more than MAX_PROMPT_BYTES (2097152)`);
  });

  it('renders a prompt at the cap exactly', () => {
    const out = renderPrompt(['a{{output}}', '{{ output }}b{{metadata.k}}'], { input: null, output: 'xy', expected_output: null, metadata: { k: 1 } }, 7);
    expect(out).toEqual(['axy', 'xyb1']);
    expect(() => renderPrompt(['a{{output}}', '{{ output }}b{{metadata.k}}'], { input: null, output: 'xy', expected_output: null, metadata: { k: 1 } }, 6)).toThrow(
      'prompt renders to 7 bytes, more than MAX_PROMPT_BYTES (6)',
    );
  });
});

describe('regexes with large programs', () => {
  it('are compiled on the thread, at creation and for scoring', async () => {
    const pattern = `(?:${Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(97 + i)}[a-z]{999}`).join('|')})+$`;
    const c = cfg({ type: 'regex', pattern, flags: 'i' });
    const [checks, scores] = [pool.sent.check, pool.sent.score];
    expect(await checkEvaluatorEngines(c, pool)).toEqual([]);
    expect(pool.sent.check).toBe(checks + 1);
    expect(await compileScorer(c, pool)(item(`a${'z'.repeat(999)}`))).toMatchObject({ score: 1 });
    expect(pool.sent.score).toBe(scores + 1);
    // A short pattern without large counts stays inline.
    expect(await checkEvaluatorEngines(cfg({ type: 'regex', pattern: '^(a+)+$' }), pool)).toEqual([]);
    expect(pool.sent.check).toBe(checks + 1);
  });
});
