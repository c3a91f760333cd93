import { describe, expect, it } from 'vitest';
import { compileEvaluator, type EvaluatorConfigInput } from '../../domain/evaluators/index.js';
import { tokenize } from '../../domain/evaluators/similarity.evaluators.js';
import { checkResult, item, run, thresholdOf } from '../helpers/evaluators.ts';

describe('exact_match', () => {
  const cfg = { type: 'exact_match' } satisfies EvaluatorConfigInput;

  it('matches equal strings and trims by default', () => {
    expect(run(cfg, 'Paris', 'Paris')).toEqual({ score: 1, passed: true, reason: 'output equals expected_output' });
    expect(run(cfg, '  Paris\n', 'Paris').score).toBe(1);
  });

  it('fails different strings and quotes both in the reason', () => {
    const r = run(cfg, 'London', 'Paris');
    expect(r).toMatchObject({ score: 0, passed: false });
    expect(r.reason).toBe('output does not equal expected_output: got "London", expected "Paris"');
  });

  it('is case-sensitive unless told otherwise', () => {
    expect(run(cfg, 'paris', 'Paris').score).toBe(0);
    expect(run({ ...cfg, case_sensitive: false }, 'paris', 'PARIS').score).toBe(1);
  });

  it('does not trim when trim is false', () => {
    expect(run({ ...cfg, trim: false }, ' Paris', 'Paris').score).toBe(0);
    expect(run({ ...cfg, trim: false }, 'Paris', 'Paris').score).toBe(1);
  });

  it('compares JSON structurally, ignoring key order', () => {
    expect(run(cfg, '{"b": 2, "a": [1, {"c": null}]}', { a: [1, { c: null }], b: 2 }).score).toBe(1);
    expect(run(cfg, { x: 1, y: 2 }, '{"y":2,"x":1}').reason).toBe('output equals expected_output (compared as JSON)');
    expect(run(cfg, '[1,2,3]', '[1, 2, 3]').score).toBe(1);
  });

  it('reports the path of the first structural difference', () => {
    const r = run(cfg, '{"a": {"b": [1, 2, 4]}}', { a: { b: [1, 2, 3] } });
    expect(r.score).toBe(0);
    expect(r.reason).toBe('output differs from expected_output at $.a.b[2]: values differ');
    expect(run(cfg, { a: 1 }, { a: 1, b: 2 }).reason).toMatch(/at \$: key "b" missing on one side/);
    expect(run(cfg, [1, 2], [1, 2, 3]).reason).toMatch(/array length 2 vs 3/);
    expect(run(cfg, '[1]', { 0: 1 }).reason).toBe('output differs from expected_output at $: array vs object');
    expect(run(cfg, [], {}).score).toBe(0);
    expect(run(cfg, { a: [] }, { a: 'x' }).reason).toMatch(/at \$\.a: array vs string/);
    expect(run(cfg, { 'a b': { c: 1 } }, { 'a b': { c: 2 } }).reason).toMatch(/at \$\["a b"\]\.c/);
  });

  it('compares numbers and booleans as JSON values', () => {
    expect(run(cfg, 42, 42).score).toBe(1);
    expect(run(cfg, 42, 43).score).toBe(0);
    expect(run(cfg, true, true).score).toBe(1);
    expect(run(cfg, 1, true).score).toBe(0);
  });

  it('falls back to text when only one side is structured', () => {
    expect(run(cfg, '42', 42).score).toBe(1); // '42' vs JSON text of 42
    expect(run(cfg, 'true', true).score).toBe(1);
    expect(run(cfg, '{"a":1}', '{"a":1} trailing').score).toBe(0);
  });

  it('treats null and undefined as empty text', () => {
    expect(run(cfg, null, '').score).toBe(1);
    expect(run(cfg, undefined, null).score).toBe(1);
    expect(run(cfg, 'x', null).score).toBe(0);
  });

  it('uses value instead of expected_output when configured', () => {
    const r = run({ ...cfg, value: 'yes' }, 'yes', 'no');
    expect(r).toEqual({ score: 1, passed: true, reason: 'output equals value' });
    expect(run({ ...cfg, value: { k: [1] } }, '{"k":[1]}', 'ignored').score).toBe(1);
    expect(run({ ...cfg, value: 'yes' }, 'no', 'no').score).toBe(0);
  });

  it('passes by threshold', () => {
    expect(run({ ...cfg, threshold: 0 }, 'a', 'b')).toMatchObject({ score: 0, passed: true });
  });
});

describe('contains family', () => {
  it('contains', () => {
    expect(run({ type: 'contains' }, 'The capital is Paris.', 'Paris')).toEqual({
      score: 1,
      passed: true,
      reason: 'output contains "Paris"',
    });
    expect(run({ type: 'contains' }, 'The capital is paris.', 'Paris')).toMatchObject({ score: 0, passed: false });
    expect(run({ type: 'contains', case_sensitive: false }, 'THE CAPITAL IS PARIS', 'paris').score).toBe(1);
    expect(run({ type: 'contains', value: 'Rome' }, 'Paris', 'Paris').score).toBe(0);
  });

  it('icontains is always case-insensitive', () => {
    const r = run({ type: 'icontains' }, 'HeLLo World', 'hello');
    expect(r).toEqual({ score: 1, passed: true, reason: 'output contains "hello" (case-insensitive)' });
    expect(run({ type: 'icontains', value: 'WORLD' }, 'hello world', null).score).toBe(1);
    expect(run({ type: 'icontains' }, 'hello', 'bye').score).toBe(0);
  });

  it('not_contains', () => {
    expect(run({ type: 'not_contains', value: 'sorry' }, 'Here you go')).toMatchObject({ score: 1, passed: true });
    const r = run({ type: 'not_contains', value: 'sorry' }, 'I am sorry, I cannot');
    expect(r).toMatchObject({ score: 0, passed: false });
    expect(r.reason).toBe('output contains "sorry", which it must not');
    expect(run({ type: 'not_contains', value: 'sorry', case_sensitive: false }, 'SORRY').score).toBe(0);
    expect(run({ type: 'not_contains', value: 'sorry' }, 'SORRY').score).toBe(1);
  });

  it('starts_with / ends_with', () => {
    expect(run({ type: 'starts_with' }, 'Answer: 42', 'Answer:').score).toBe(1);
    expect(run({ type: 'starts_with' }, ' Answer: 42', 'Answer:').score).toBe(0);
    expect(run({ type: 'starts_with', case_sensitive: false }, 'ANSWER: 42', 'answer').score).toBe(1);
    expect(run({ type: 'ends_with', value: '.' }, 'Done.').score).toBe(1);
    const r = run({ type: 'ends_with', value: '.' }, 'Done!');
    expect(r.score).toBe(0);
    expect(r.reason).toBe('output does not end with ".": it ends with "Done!"');
  });

  it('converts non-string output to JSON text', () => {
    expect(run({ type: 'contains', value: '"id":7' }, { id: 7 }).score).toBe(1);
    expect(run({ type: 'contains', value: '3' }, [1, 2, 3]).score).toBe(1);
    expect(run({ type: 'contains', value: 'x' }, null).score).toBe(0);
    expect(run({ type: 'contains' }, 12345, 234).score).toBe(1); // target 234 → "234"
  });

  it('throws a per-item error when there is nothing to look for', () => {
    const ev = compileEvaluator({ type: 'contains' });
    expect(() => ev(item('anything', null))).toThrow(/expected_output is empty/);
    expect(() => ev(item('anything', ''))).toThrow(/expected_output is empty/);
    expect(() => compileEvaluator({ type: 'not_contains', value: '' })(item('x'))).toThrow(/value is empty/);
  });
});

describe('contains_any / contains_all', () => {
  it('contains_any passes when one value is present', () => {
    const cfg = { type: 'contains_any', values: ['yes', 'yeah', 'sure'] } satisfies EvaluatorConfigInput;
    expect(run(cfg, 'sure thing')).toEqual({ score: 1, passed: true, reason: 'output contains "sure"' });
    const r = run(cfg, 'nope');
    expect(r).toMatchObject({ score: 0, passed: false });
    expect(r.reason).toBe('output contains none of: yes, yeah, sure');
    expect(run(cfg, 'YES').score).toBe(0);
    expect(run({ ...cfg, case_sensitive: false }, 'YES').score).toBe(1);
  });

  it('contains_all scores the share found and lists what is missing', () => {
    const cfg = { type: 'contains_all', values: ['foo', 'bar', 'baz', 'qux'] } satisfies EvaluatorConfigInput;
    expect(run(cfg, 'foo bar baz qux')).toEqual({ score: 1, passed: true, reason: 'output contains all 4 values' });
    const r = run(cfg, 'foo and baz');
    expect(r).toEqual({ score: 0.5, passed: false, reason: 'missing: bar, qux' });
    expect(run({ ...cfg, threshold: 0.5 }, 'foo and baz').passed).toBe(true);
    expect(run({ ...cfg, threshold: 0.75 }, 'foo and baz').passed).toBe(false);
    expect(run({ ...cfg, case_sensitive: false }, 'FOO BAR BAZ').score).toBe(0.75);
  });

  it('contains_all shortens a long list of missing values', () => {
    const values = Array.from({ length: 200 }, (_, i) => `value-number-${i}`);
    const r = run({ type: 'contains_all', values }, 'none here');
    expect(r.score).toBe(0);
    expect(r.reason).toMatch(/^missing: value-number-0, value-number-1, .*… \(\d+ more\)$/);
  });
});

describe('regex', () => {
  it('searches the output (unanchored)', () => {
    const cfg = { type: 'regex', pattern: '\\b\\d{3}-\\d{4}\\b' } satisfies EvaluatorConfigInput;
    expect(run(cfg, 'call 555-1234 now')).toEqual({
      score: 1,
      passed: true,
      reason: 'output matches /\\b\\d{3}-\\d{4}\\b/',
    });
    const r = run(cfg, 'call 5551234 now');
    expect(r).toMatchObject({ score: 0, passed: false });
    expect(r.reason).toBe('output does not match /\\b\\d{3}-\\d{4}\\b/');
  });

  it('honours anchors and the i, m, s flags', () => {
    expect(run({ type: 'regex', pattern: '^yes$' }, 'YES').score).toBe(0);
    expect(run({ type: 'regex', pattern: '^yes$', flags: 'i' }, 'YES').score).toBe(1);
    expect(run({ type: 'regex', pattern: '^b$' }, 'a\nb\nc').score).toBe(0);
    expect(run({ type: 'regex', pattern: '^b$', flags: 'm' }, 'a\nb\nc').score).toBe(1);
    expect(run({ type: 'regex', pattern: 'a.b' }, 'a\nb').score).toBe(0);
    expect(run({ type: 'regex', pattern: 'a.b', flags: 's' }, 'a\nb').score).toBe(1);
    expect(run({ type: 'regex', pattern: '(?i)hello' }, 'HELLO').score).toBe(1);
  });

  it('supports Unicode classes and named groups', () => {
    expect(run({ type: 'regex', pattern: '^\\p{Greek}+$' }, 'αβγ').score).toBe(1);
    expect(run({ type: 'regex', pattern: '^\\p{Greek}+$' }, 'abc').score).toBe(0);
    expect(run({ type: 'regex', pattern: '(?P<year>\\d{4})-\\d{2}' }, 'on 2024-05').score).toBe(1);
  });

  it('matches JSON text of structured output', () => {
    expect(run({ type: 'regex', pattern: '"status":"ok"' }, { status: 'ok' }).score).toBe(1);
  });
});

describe('is_json', () => {
  const cfg = { type: 'is_json' } satisfies EvaluatorConfigInput;
  it.each([
    ['{"a":1}', 1],
    ['[1,2]', 1],
    ['"text"', 1],
    ['42', 1],
    ['  {"a": true}  ', 1],
    ['{a:1}', 0],
    ['{"a":1', 0],
    ['', 0],
    ['hello', 0],
  ])('%j scores %s', (output, score) => {
    expect(run(cfg, output).score).toBe(score);
  });

  it('accepts already-structured output and rejects null', () => {
    expect(run(cfg, { a: 1 })).toEqual({ score: 1, passed: true, reason: 'output is a JSON object' });
    expect(run(cfg, [1])).toMatchObject({ score: 1, reason: 'output is a JSON array' });
    expect(run(cfg, 3).score).toBe(1);
    expect(run(cfg, null)).toEqual({ score: 0, passed: false, reason: 'output is empty' });
  });

  it('explains parse failures', () => {
    expect(run(cfg, '{"a":').reason).toMatch(/^output is not valid JSON: /);
  });
});

describe('json_schema', () => {
  const schema = {
    type: 'object',
    required: ['name'],
    properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 } },
    additionalProperties: false,
  };
  const cfg = { type: 'json_schema', schema } satisfies EvaluatorConfigInput;

  it('passes valid output, parsed from a string or structured', () => {
    expect(run(cfg, '{"name":"Ada","age":36}')).toEqual({
      score: 1,
      passed: true,
      reason: 'output matches the JSON schema',
    });
    expect(run(cfg, { name: 'Ada' }).score).toBe(1);
  });

  it('lists the first ajv errors', () => {
    const r = run(cfg, '{"age": -1, "extra": true}');
    expect(r).toMatchObject({ score: 0, passed: false });
    expect(r.reason).toMatch(/^output does not match the JSON schema: /);
    expect(r.reason).toContain("(root) must have required property 'name'");
    expect(r.reason).toContain('(root) must NOT have additional properties ("extra")');
    expect(r.reason).toContain('/age must be >= 0');
  });

  it('says how many errors were left out', () => {
    const r = run({ type: 'json_schema', schema: { type: 'array', items: { type: 'number' } } }, '["a","b","c","d","e"]');
    expect(r.reason).toBe(
      'output does not match the JSON schema: /0 must be number; /1 must be number; /2 must be number; and 2 more',
    );
  });

  it('fails output that is not JSON or empty', () => {
    expect(run(cfg, 'Ada, 36').reason).toMatch(/^output is not valid JSON/);
    expect(run(cfg, null)).toMatchObject({ score: 0, reason: 'output is empty' });
  });

  it('uses RE2 for pattern keywords', () => {
    const s = { type: 'json_schema', schema: { type: 'string', pattern: '^[a-z]+-\\d+$' } } satisfies EvaluatorConfigInput;
    expect(run(s, '"abc-12"').score).toBe(1);
    expect(run(s, '"abc-x"').score).toBe(0);
    // ECMA-262 escapes in schema patterns are translated for RE2.
    expect(run({ type: 'json_schema', schema: { type: 'string', pattern: '^caf\\u00e9$' } }, '"café"').score).toBe(1);
    // Two different patterns in one schema must not share a compiled RegExp.
    const two = {
      type: 'json_schema',
      schema: {
        type: 'object',
        properties: { a: { type: 'string', pattern: '^a+$' }, b: { type: 'string', pattern: '^b+$' } },
      },
    } satisfies EvaluatorConfigInput;
    expect(run(two, { a: 'aaa', b: 'bbb' }).score).toBe(1);
    expect(run(two, { a: 'aaa', b: 'aaa' }).score).toBe(0);
  });

  it('supports draft 2020-12 when $schema names it', () => {
    const s = {
      type: 'json_schema',
      schema: {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'array',
        prefixItems: [{ type: 'string' }, { type: 'number' }],
        items: false,
      },
    } satisfies EvaluatorConfigInput;
    expect(run(s, '["a", 1]').score).toBe(1);
    expect(run(s, '["a", 1, 2]').score).toBe(0);
    expect(run(s, '[1, "a"]').score).toBe(0);
  });

  it('keeps schemas with the same $id apart', () => {
    const a = compileEvaluator({ type: 'json_schema', schema: { $id: 'https://x.test/s', type: 'string' } });
    const b = compileEvaluator({ type: 'json_schema', schema: { $id: 'https://x.test/s', type: 'number' } });
    expect(a(item('"s"')).score).toBe(1);
    expect(b(item('"s"')).score).toBe(0);
    expect(b(item('5')).score).toBe(1);
  });

  it('checks uniqueItems structurally, ignoring key order', () => {
    const s = { type: 'json_schema', schema: { type: 'array', uniqueItems: true } } satisfies EvaluatorConfigInput;
    expect(run(s, [{ a: 1, b: [2] }, { a: 1, b: [3] }, 1, '1']).score).toBe(1);
    const r = run(s, [{ a: 1, b: [2] }, 'x', { b: [2], a: 1 }]);
    expect(r.score).toBe(0);
    expect(r.reason).toBe('output does not match the JSON schema: (root) must NOT have duplicate items (items ## 0 and 2 are identical)');
    expect(run({ type: 'json_schema', schema: { uniqueItems: false } }, [1, 1]).score).toBe(1);
  });

  it('keeps schema semantics: property names that look like keywords, data under const/enum', () => {
    const s = {
      type: 'json_schema',
      schema: {
        type: 'object',
        properties: { const: { const: { a: 1 } }, enum: { enum: [{ x: 1 }, 'y'] }, properties: { type: 'number' } },
        patternProperties: { '^z\\d$': { type: 'boolean' } },
        additionalProperties: false,
      },
    } satisfies EvaluatorConfigInput;
    expect(run(s, { const: { a: 1 }, enum: 'y', properties: 3, z1: true }).score).toBe(1);
    expect(run(s, { const: { a: 1, 'x-evalgate-cost': 3 } }).reason).toContain('/const must be equal to constant');
    expect(run(s, { 'x-evalgate-cost': 1 }).reason).toContain('must NOT have additional properties ("x-evalgate-cost")');
    expect(run(s, { z1: 'no' }).reason).toContain('/z1 must be boolean');
    expect(run(s, { enum: { x: 2 } }).reason).toContain('/enum must be equal to one of the allowed values');
  });

  it('ignores format (an annotation) and unknown keywords', () => {
    const s = { type: 'json_schema', schema: { type: 'string', format: 'email', 'x-note': 1 } } satisfies EvaluatorConfigInput;
    expect(run(s, '"not an email"').score).toBe(1);
  });
});

describe('json_match', () => {
  const expected = { a: { b: [1, { c: 'x' }] }, d: 3, e: null, f: { g: [1, 2] } };

  it('scores the share of paths whose values are equal', () => {
    const cfg = { type: 'json_match', paths: ['a.b[1].c', '$.d', 'a.b', 'e'] } satisfies EvaluatorConfigInput;
    const r = run(cfg, '{"a":{"b":[1,{"c":"x"}]},"d":2}', expected);
    expect(r.score).toBe(0.5);
    expect(r.passed).toBe(false);
    expect(r.reason).toBe('2/4 paths match; mismatched: $.d (differs), e (missing in output)');
  });

  it('passes when every path matches, comparing nested values structurally', () => {
    const cfg = { type: 'json_match', paths: ['f', 'a.b[0]'] } satisfies EvaluatorConfigInput;
    expect(run(cfg, { f: { g: [1, 2] }, a: { b: [1] }, other: 'ignored' }, JSON.stringify(expected))).toEqual({
      score: 1,
      passed: true,
      reason: 'all 2 paths match',
    });
  });

  it('names where a nested value differs', () => {
    const r = run({ type: 'json_match', paths: ['f'] }, { f: { g: [1, 3] } }, expected);
    expect(r.reason).toBe('0/1 paths match; mismatched: f (differs at $.g[1])');
  });

  it('counts a path missing from the target as a mismatch', () => {
    const r = run({ type: 'json_match', paths: ['zzz', 'd'] }, { zzz: 1, d: 3 }, expected);
    expect(r.score).toBe(0.5);
    expect(r.reason).toContain('zzz (missing in expected_output)');
  });

  it('passes by threshold', () => {
    const cfg = { type: 'json_match', paths: ['a', 'b', 'c'], threshold: 0.6 } satisfies EvaluatorConfigInput;
    expect(run(cfg, { a: 1, b: 2, c: 0 }, { a: 1, b: 2, c: 3 })).toMatchObject({ score: 2 / 3, passed: true });
    expect(run(cfg, { a: 1, b: 0, c: 0 }, { a: 1, b: 2, c: 3 })).toMatchObject({ score: 1 / 3, passed: false });
  });

  it('uses value as the target when configured', () => {
    const cfg = { type: 'json_match', paths: ['status'], value: { status: 'ok' } } satisfies EvaluatorConfigInput;
    expect(run(cfg, '{"status":"ok"}', { status: 'fail' }).score).toBe(1);
    expect(run(cfg, '{"status":"fail"}', { status: 'fail' }).score).toBe(0);
  });

  it('fails output that is not JSON, and throws when the target is not JSON', () => {
    const cfg = { type: 'json_match', paths: ['a'] } satisfies EvaluatorConfigInput;
    expect(run(cfg, 'not json', { a: 1 })).toMatchObject({ score: 0 });
    expect(run(cfg, 'not json', { a: 1 }).reason).toMatch(/^output is not valid JSON/);
    const ev = compileEvaluator(cfg);
    expect(() => ev(item('{"a":1}', 'not json'))).toThrow(/^expected_output is not valid JSON/);
    expect(() => ev(item('{"a":1}', null))).toThrow(/^expected_output is empty/);
  });

  it('distinguishes array indexes from object keys', () => {
    const cfg = { type: 'json_match', paths: ['[0]'] } satisfies EvaluatorConfigInput;
    expect(run(cfg, ['x'], ['x']).score).toBe(1);
    expect(run(cfg, { '0': 'x' }, ['x']).score).toBe(0);
  });
});

describe('levenshtein', () => {
  const cfg = { type: 'levenshtein' } satisfies EvaluatorConfigInput;

  it('scores 1 − distance / longer length', () => {
    const r = run(cfg, 'kitten', 'sitting'); // distance 3, length 7
    expect(r.score).toBeCloseTo(4 / 7, 12);
    expect(r.passed).toBe(true);
    expect(r.reason).toBe('edit distance 3 over 7 chars (similarity 0.5714)');
    expect(run(cfg, 'flaw', 'lawn')).toMatchObject({ score: 0.5, passed: true }); // exactly the threshold
    expect(run(cfg, 'abc', 'xyz')).toMatchObject({ score: 0, passed: false });
    expect(run(cfg, 'same', 'same').score).toBe(1);
  });

  it('handles empty sides', () => {
    expect(run(cfg, '', '')).toEqual({ score: 1, passed: true, reason: 'output and expected_output are both empty' });
    expect(run(cfg, 'abc', null).score).toBe(0);
    expect(run(cfg, null, 'abc').score).toBe(0);
  });

  it('applies trim and case options', () => {
    expect(run(cfg, '  Hello ', 'Hello').score).toBe(1);
    expect(run({ ...cfg, trim: false }, ' Hello', 'Hello').score).toBeCloseTo(5 / 6, 12);
    expect(run(cfg, 'HELLO', 'hello').score).toBe(0);
    expect(run({ ...cfg, case_sensitive: false }, 'HELLO', 'hello').score).toBe(1);
  });

  it('uses value and threshold', () => {
    expect(run({ ...cfg, value: 'sitting', threshold: 0.6 }, 'kitten', 'kitten')).toMatchObject({ passed: false });
    expect(run({ ...cfg, value: 'sitting', threshold: 0.57 }, 'kitten', 'kitten')).toMatchObject({ passed: true });
  });
});

describe('numeric_diff', () => {
  const cfg = { type: 'numeric_diff' } satisfies EvaluatorConfigInput;

  it('passes equal numbers from numbers or numeric strings', () => {
    expect(run(cfg, '42', 42)).toMatchObject({ score: 1, passed: true });
    expect(run(cfg, ' -1.5e2 ', '-150').score).toBe(1);
    expect(run(cfg, 0, '0.0').score).toBe(1);
  });

  it('scores by relative difference outside the tolerance', () => {
    const r = run(cfg, 90, 100); // d = 10, max = 100 → 0.9
    expect(r.score).toBeCloseTo(0.9, 12);
    expect(r.passed).toBe(false);
    expect(r.reason).toBe('output 90 differs from expected_output 100 by 10, more than 0');
    expect(run(cfg, 5, -5).score).toBe(0); // opposite signs
    expect(run(cfg, 0, 3).score).toBe(0);
    expect(run({ ...cfg, threshold: 0.85 }, 90, 100).passed).toBe(true);
  });

  it('applies an absolute tolerance', () => {
    const c = { ...cfg, tolerance: 0.01 };
    expect(run(c, '3.14', 3.14159)).toMatchObject({ score: 1, passed: true });
    expect(run(c, '3.14', 3.14159).reason).toBe('output 3.14 is within 0.01 of expected_output 3.14159 (difference 0.0016)');
    const r = run(c, 3.1, 3.14159);
    expect(r.passed).toBe(false);
    expect(r.score).toBeCloseTo(1 - 0.04159 / 3.14159, 12);
  });

  it('applies a relative tolerance', () => {
    const c = { ...cfg, tolerance: 0.1, relative: true };
    expect(run(c, 105, 100).score).toBe(1);
    expect(run(c, 90, 100).score).toBe(1); // d = 10 ≤ 0.1 × 100
    const r = run(c, 120, 100);
    expect(r.score).toBeCloseTo(1 - 20 / 120, 12);
    expect(r.reason).toContain('more than 0.1 × |expected_output| = 10');
    expect(run(c, 0.001, 0).score).toBe(0); // target 0: only an exact match is within a relative tolerance
  });

  it('uses value instead of expected_output', () => {
    expect(run({ ...cfg, value: 7 }, '7', 'not used').score).toBe(1);
    expect(run({ ...cfg, value: '7.5' }, 7.5, null).score).toBe(1);
  });

  it('throws a per-item error for non-numeric output or target', () => {
    const ev = compileEvaluator(cfg);
    expect(() => ev(item('about 42', 42))).toThrow('output is not a number: "about 42"');
    expect(() => ev(item(null, 42))).toThrow(/^output is not a number/);
    expect(() => ev(item({ n: 1 }, 42))).toThrow(/^output is not a number/);
    expect(() => ev(item('1e999', 42))).toThrow(/^output is not a number/); // overflows to Infinity
    expect(() => ev(item('42', 'n/a'))).toThrow('expected_output is not a number: "n/a"');
  });

  it('never returns NaN for extreme numbers', () => {
    expect(run(cfg, 1.7e308, -1.7e308).score).toBe(0); // the difference overflows to Infinity
    expect(run(cfg, Number.MIN_VALUE, 0).score).toBe(0);
    expect(run(cfg, 1e-300, 2e-300).score).toBeCloseTo(0.5, 12);
  });
});

describe('tokenisation', () => {
  it('lower-cases and splits on anything but letters, digits and marks', () => {
    expect(tokenize("Hello, World! It's 2024-05; naïve café — Ünïcode_x")).toEqual([
      'hello',
      'world',
      'it',
      's',
      '2024',
      '05',
      'naïve',
      'café',
      'ünïcode',
      'x',
    ]);
    expect(tokenize('日本語 テキスト')).toEqual(['日本語', 'テキスト']);
    expect(tokenize('emoji 😀 between')).toEqual(['emoji', 'between']);
    expect(tokenize('  ...  ')).toEqual([]);
  });
});

describe('token_f1', () => {
  const cfg = { type: 'token_f1' } satisfies EvaluatorConfigInput;

  it('computes SQuAD-style F1', () => {
    const r = run(cfg, 'The cat sat on the mat', 'the cat sat'); // P 3/6, R 3/3
    expect(r.score).toBeCloseTo(2 / 3, 12);
    expect(r.passed).toBe(true);
    expect(r.reason).toBe('token F1 0.6667 (precision 0.5, recall 1, 3 common tokens)');
  });

  it('counts tokens as a multiset', () => {
    // common = min(3,1) for a + min(1,2) for b = 2; P = 2/4, R = 2/3 → F1 = 4/7
    expect(run(cfg, 'a a a b', 'a b b').score).toBeCloseTo(4 / 7, 12);
  });

  it('ignores case and punctuation', () => {
    expect(run(cfg, 'Hello, WORLD!', 'hello world').score).toBe(1);
  });

  it('handles no overlap and empty sides', () => {
    expect(run(cfg, 'red green', 'blue')).toMatchObject({ score: 0, passed: false });
    expect(run(cfg, '', '').score).toBe(1);
    expect(run(cfg, '!!!', 'word')).toMatchObject({ score: 0, reason: 'output has no tokens' });
    expect(run(cfg, 'word', null)).toMatchObject({ score: 0, reason: 'expected_output has no tokens' });
  });

  it('uses value and threshold', () => {
    expect(run({ ...cfg, value: 'paris france' }, 'Paris', 'ignored').score).toBeCloseTo(2 / 3, 12);
    expect(run({ ...cfg, threshold: 0.7 }, 'The cat sat on the mat', 'the cat sat').passed).toBe(false);
  });
});

describe('rouge_l', () => {
  const cfg = { type: 'rouge_l' } satisfies EvaluatorConfigInput;

  it('computes the LCS F-measure', () => {
    // LCS "police the gunman" = 3, P = R = 3/4
    const r = run(cfg, 'police kill the gunman', 'police killed the gunman');
    expect(r.score).toBeCloseTo(0.75, 12);
    expect(r.passed).toBe(true); // default threshold 0.75
    expect(r.reason).toBe('ROUGE-L F 0.75 (LCS 3 tokens, precision 0.75, recall 0.75)');
    // LCS "the gunman" = 2 → 0.5
    expect(run(cfg, 'the gunman kill police', 'police killed the gunman')).toMatchObject({ score: 0.5, passed: false });
  });

  it('rewards order, unlike token F1', () => {
    expect(run(cfg, 'c b a', 'a b c').score).toBeCloseTo(1 / 3, 12);
    expect(run({ type: 'token_f1' }, 'c b a', 'a b c').score).toBe(1);
  });

  it('handles unequal lengths and shared prefixes/suffixes', () => {
    // LCS 6 of candidate 7 / reference 6 → F = 12/13
    expect(run(cfg, 'the cat was found under the bed', 'the cat was under the bed').score).toBeCloseTo(12 / 13, 12);
    // LCS = "a x b" = 3; P = 3/5, R = 3/4 → F = 2/3
    expect(run(cfg, 'a q x r b', 'a x y b').score).toBeCloseTo(2 / 3, 12);
  });

  it('handles empty sides', () => {
    expect(run(cfg, '', '').score).toBe(1);
    expect(run(cfg, 'x', '').score).toBe(0);
    expect(run(cfg, 'x y', 'z').score).toBe(0);
  });

  it('uses value', () => {
    expect(run({ ...cfg, value: 'a b c' }, 'a b c', 'z').score).toBe(1);
  });
});

describe('every evaluator on odd item values', () => {
  const configs: EvaluatorConfigInput[] = [
    { type: 'exact_match' },
    { type: 'contains', value: '1' },
    { type: 'icontains', value: 'A' },
    { type: 'not_contains', value: 'zz' },
    { type: 'starts_with', value: '[' },
    { type: 'ends_with', value: '}' },
    { type: 'contains_any', values: ['1', 'a'] },
    { type: 'contains_all', values: ['1', 'a'] },
    { type: 'regex', pattern: '\\d' },
    { type: 'is_json' },
    { type: 'json_schema', schema: { type: 'object' } },
    { type: 'json_match', paths: ['a'], value: { a: 1 } },
    { type: 'levenshtein' },
    { type: 'numeric_diff', value: 1 },
    { type: 'token_f1' },
    { type: 'rouge_l' },
  ];
  const values: unknown[] = [
    null,
    undefined,
    '',
    ' ',
    0,
    -1.5,
    1,
    true,
    false,
    [],
    {},
    [1, 'a', null],
    { a: 1, b: { c: [true] } },
    '{"a":1}',
    'A plain sentence, with punctuation!',
    '\u0000\uFFFF\uD800',
    '😀'.repeat(10),
  ];

  it('returns a valid result or throws an Error for every combination', () => {
    let results = 0;
    let errors = 0;
    for (const config of configs) {
      const ev = compileEvaluator(config);
      for (const output of values) {
        for (const expected of [null, 'a 1', { a: 1 }]) {
          try {
            checkResult(ev(item(output, expected)), thresholdOf(config));
            results += 1;
          } catch (e) {
            expect(e).toBeInstanceOf(Error);
            expect((e as Error).message.length).toBeGreaterThan(0);
            errors += 1;
          }
        }
      }
    }
    expect(results).toBeGreaterThan(600);
    expect(errors).toBeGreaterThan(0); // numeric_diff on non-numbers
  });
});
