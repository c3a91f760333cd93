import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  EVALUATOR_TYPES,
  compileEvaluator,
  evaluatorConfigSchema,
  parseEvaluatorConfig,
  validatedEvaluatorConfigSchema,
} from '../../domain/evaluators/index.js';
import { parseJsonPath } from '../../domain/evaluators/evaluator.schema.js';

function issues(input: unknown) {
  const r = validatedEvaluatorConfigSchema.safeParse(input);
  expect(r.success).toBe(false);
  return r.error!.issues;
}

describe('evaluator config: defaults', () => {
  it('lists the sixteen deterministic evaluator types and llm_judge', () => {
    expect([...EVALUATOR_TYPES].sort()).toEqual(
      [
        'contains',
        'contains_all',
        'contains_any',
        'ends_with',
        'exact_match',
        'icontains',
        'is_json',
        'json_match',
        'json_schema',
        'levenshtein',
        'not_contains',
        'numeric_diff',
        'regex',
        'rouge_l',
        'starts_with',
        'token_f1',
        'llm_judge',
      ].sort(),
    );
  });

  it.each([
    ['exact_match', {}, 1],
    ['contains', {}, 1],
    ['icontains', {}, 1],
    ['not_contains', {}, 1],
    ['starts_with', {}, 1],
    ['ends_with', {}, 1],
    ['contains_any', { values: ['a'] }, 1],
    ['contains_all', { values: ['a'] }, 1],
    ['regex', { pattern: 'a' }, 1],
    ['is_json', {}, 1],
    ['json_schema', { schema: {} }, 1],
    ['json_match', { paths: ['a'] }, 1],
    ['numeric_diff', {}, 1],
    ['levenshtein', {}, 0.5],
    ['token_f1', {}, 0.5],
    ['rouge_l', {}, 0.75],
  ] as const)('%s defaults its threshold to %s', (type, extra, threshold) => {
    const parsed = parseEvaluatorConfig({ type, ...extra });
    expect('threshold' in parsed ? parsed.threshold : undefined).toBe(threshold);
  });

  it('fills in option defaults', () => {
    expect(parseEvaluatorConfig({ type: 'exact_match' })).toEqual({
      type: 'exact_match',
      threshold: 1,
      trim: true,
      case_sensitive: true,
    });
    expect(parseEvaluatorConfig({ type: 'numeric_diff' })).toEqual({
      type: 'numeric_diff',
      threshold: 1,
      tolerance: 0,
      relative: false,
    });
    expect(parseEvaluatorConfig({ type: 'regex', pattern: 'x' })).toEqual({
      type: 'regex',
      threshold: 1,
      pattern: 'x',
      flags: '',
    });
  });

  it('keeps an explicit threshold and value', () => {
    const parsed = parseEvaluatorConfig({ type: 'exact_match', threshold: 0, value: { a: [1, 2] } });
    expect(parsed).toMatchObject({ threshold: 0, value: { a: [1, 2] } });
  });
});

describe('evaluator config: rejected configs', () => {
  it('rejects an unknown type with an issue on type', () => {
    const [issue] = issues({ type: 'bleu' });
    expect(issue!.path).toEqual(['type']);
    expect(issue!.code).toBe('invalid_union');
  });

  it('rejects a config without a type', () => {
    expect(issues({ pattern: 'x' })[0]!.path).toEqual(['type']);
  });

  it('rejects non-objects', () => {
    expect(issues('regex')[0]!.code).toBe('invalid_type');
    expect(issues(null)[0]!.code).toBe('invalid_type');
  });

  it('rejects a regex config without a pattern, naming pattern', () => {
    const [issue] = issues({ type: 'regex' });
    expect(issue!.path).toEqual(['pattern']);
    expect(issue!.message).toBe('pattern is required');
  });

  it.each([
    ['(', /missing closing \)/],
    ['[a-', /missing closing \]/],
    ['(a)\\1', /invalid escape sequence/], // backreferences are not RE2
    ['(?=a)', /invalid or unsupported Perl syntax/], // lookahead is not RE2
    ['a{1001}', /invalid repeat count/],
  ])('rejects the invalid RE2 pattern %s with an issue on pattern', (pattern, message) => {
    const found = issues({ type: 'regex', pattern });
    expect(found).toHaveLength(1);
    expect(found[0]!.path).toEqual(['pattern']);
    expect(found[0]!.message).toMatch(/^invalid regular expression: /);
    expect(found[0]!.message).toMatch(message);
  });

  it('rejects a pattern whose RE2 program is too large', () => {
    const pattern = '[a-z]{1000}'.repeat(20);
    const [issue] = issues({ type: 'regex', pattern });
    expect(issue!.path).toEqual(['pattern']);
    expect(issue!.message).toMatch(/too complex \(RE2 program size \d+ > 10000\)/);
  });

  it('rejects an empty or overlong pattern', () => {
    expect(issues({ type: 'regex', pattern: '' })[0]!.path).toEqual(['pattern']);
    expect(issues({ type: 'regex', pattern: 'a'.repeat(1001) })[0]!.message).toMatch(/at most 1000/);
  });

  it.each(['g', 'u', 'x', 'ii', 'imsi', ' i'])('rejects the flags %j', (flags) => {
    const found = issues({ type: 'regex', pattern: 'a', flags });
    expect(found.map((i) => i.path)).toContainEqual(['flags']);
  });

  it.each(['', 'i', 'm', 's', 'ims', 'si'])('accepts the flags %j', (flags) => {
    expect(validatedEvaluatorConfigSchema.safeParse({ type: 'regex', pattern: 'a', flags }).success).toBe(true);
  });

  it('rejects unknown fields, naming them', () => {
    const [issue] = issues({ type: 'contains', value: 'x', ignore_case: true });
    expect(issue!.code).toBe('unrecognized_keys');
    expect((issue as { keys: string[] }).keys).toEqual(['ignore_case']);
    expect(issue!.message).toContain('ignore_case');
  });

  it('rejects options that do not belong to the type', () => {
    // icontains is always case-insensitive; token_f1 has no trim; regex has no value.
    expect((issues({ type: 'icontains', case_sensitive: true })[0] as { keys: string[] }).keys).toEqual(['case_sensitive']);
    expect((issues({ type: 'token_f1', trim: true })[0] as { keys: string[] }).keys).toEqual(['trim']);
    expect((issues({ type: 'regex', pattern: 'a', value: 'x' })[0] as { keys: string[] }).keys).toEqual(['value']);
    expect((issues({ type: 'is_json', value: 'x' })[0] as { keys: string[] }).keys).toEqual(['value']);
  });

  it.each([-0.1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '0.5'])('rejects the threshold %s', (threshold) => {
    expect(issues({ type: 'levenshtein', threshold })[0]!.path).toEqual(['threshold']);
  });

  it('rejects wrongly typed options', () => {
    expect(issues({ type: 'exact_match', trim: 'yes' })[0]!.path).toEqual(['trim']);
    expect(issues({ type: 'contains', value: 42 })[0]!.path).toEqual(['value']);
    expect(issues({ type: 'numeric_diff', tolerance: -1 })[0]!.path).toEqual(['tolerance']);
    expect(issues({ type: 'numeric_diff', value: 'ten' })[0]!.path).toEqual(['value']);
  });

  it('requires non-empty values for contains_any / contains_all', () => {
    expect(issues({ type: 'contains_any' })[0]!.path).toEqual(['values']);
    expect(issues({ type: 'contains_all', values: [] })[0]!.path).toEqual(['values']);
    expect(issues({ type: 'contains_all', values: ['a', ''] })[0]!.path).toEqual(['values', 1]);
  });

  it('rejects invalid json_match paths, pointing at the entry', () => {
    expect(issues({ type: 'json_match', paths: [] })[0]!.path).toEqual(['paths']);
    for (const bad of ['', 'a..b', 'a[x]', 'a[01]', 'a[', '$x', 'a.', 'a["b]']) {
      const found = issues({ type: 'json_match', paths: ['ok', bad] });
      expect(found[0]!.path, bad).toEqual(['paths', 1]);
    }
  });

  it('rejects a json_schema config whose schema is missing, not an object, or does not compile', () => {
    expect(issues({ type: 'json_schema' })[0]!.path).toEqual(['schema']);
    expect(issues({ type: 'json_schema', schema: [] })[0]!.path).toEqual(['schema']);
    expect(issues({ type: 'json_schema', schema: 'object' })[0]!.path).toEqual(['schema']);
    const [bad] = issues({ type: 'json_schema', schema: { type: 'nope' } });
    expect(bad!.path).toEqual(['schema']);
    expect(bad!.message).toMatch(/^invalid JSON schema: /);
    const [badRef] = issues({ type: 'json_schema', schema: { $ref: 'https://example.invalid/s.json' } });
    expect(badRef!.path).toEqual(['schema']);
    const [badPattern] = issues({ type: 'json_schema', schema: { type: 'string', pattern: '(a)\\1' } });
    expect(badPattern!.path).toEqual(['schema']);
    expect(badPattern!.message).toMatch(/invalid regular expression/);
  });

  it('rejects values that are not JSON or are nested too deeply', () => {
    expect(issues({ type: 'exact_match', value: { f: () => 1 } })[0]!.message).toMatch(/not a JSON value/);
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const [issue] = issues({ type: 'exact_match', value: deep });
    expect(issue!.path).toEqual(['value']);
    expect(issue!.message).toMatch(/nested deeper than 64 levels/);
    expect(issues({ type: 'json_schema', schema: { a: deep } })[0]!.path).toEqual(['schema']);
  });

  it('base schema checks shape only; the validated schema also compiles the regex', () => {
    expect(evaluatorConfigSchema.safeParse({ type: 'regex', pattern: '(' }).success).toBe(true);
    expect(validatedEvaluatorConfigSchema.safeParse({ type: 'regex', pattern: '(' }).success).toBe(false);
  });

  it('compileEvaluator rejects an invalid config with a readable Error', () => {
    expect(() => compileEvaluator({ type: 'regex', pattern: '(' })).toThrow(/^invalid evaluator config: .*pattern/s);
    expect(() => compileEvaluator({ type: 'nope' } as never)).toThrow(/invalid evaluator config/);
    expect(() => compileEvaluator({ type: 'levenshtein', threshold: 3 })).toThrow(/threshold/);
  });
});

describe('evaluator config: JSON Schema export', () => {
  it('can be represented as JSON Schema (for the OpenAPI document)', () => {
    // the schema carries its OpenAPI id, so it is emitted as a $ref into $defs
    type Variants = { oneOf?: unknown[]; anyOf?: unknown[] };
    const root = z.toJSONSchema(evaluatorConfigSchema, { io: 'input' }) as Variants & { $defs?: Record<string, Variants> };
    const json = root.$defs?.EvaluatorConfig ?? root;
    const variants = json.oneOf ?? json.anyOf ?? [];
    expect(variants).toHaveLength(17);
    expect(() => z.toJSONSchema(validatedEvaluatorConfigSchema, { io: 'input' })).not.toThrow();
  });
});

describe('parseJsonPath', () => {
  it.each([
    ['$', []],
    ['a', [{ kind: 'key', key: 'a' }]],
    ['$.a.b', [{ kind: 'key', key: 'a' }, { kind: 'key', key: 'b' }]],
    [
      'a.b[0].c',
      [
        { kind: 'key', key: 'a' },
        { kind: 'key', key: 'b' },
        { kind: 'index', index: 0 },
        { kind: 'key', key: 'c' },
      ],
    ],
    ['$[12]', [{ kind: 'index', index: 12 }]],
    ['[0].x', [{ kind: 'index', index: 0 }, { kind: 'key', key: 'x' }]],
    ['a["b.c"]', [{ kind: 'key', key: 'a' }, { kind: 'key', key: 'b.c' }]],
    ["$['x y']", [{ kind: 'key', key: 'x y' }]],
  ])('parses %s', (path, segments) => {
    expect(parseJsonPath(path)).toEqual({ ok: true, segments });
  });
});
