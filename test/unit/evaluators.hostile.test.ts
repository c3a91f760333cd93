/**
 * Hostile inputs: huge strings, deep JSON, pathological regexes. Each case must
 * return a valid result or throw an Error, and the work it did is counted, not
 * timed (a loaded CI machine makes timings flaky): every evaluator charges its
 * super-linear work (cells, scans, nodes, schema units) to a WorkBudget, so a
 * hang or a quadratic blow-up shows as units past a bound in ./limits.ts, a
 * refusal as one that came before any unit was spent, and a linear-time
 * engine as units proportional to the input.
 */
import { describe, expect, it } from 'vitest';
import { compileEvaluator, type EvaluatorConfigInput } from '../../domain/evaluators/index.js';
import { SCHEMA_WORK_BUDGET } from '../../domain/evaluators/json-schema.js';
import {
  CONTAINS_MAX_SCAN,
  DEEP_EQUAL_MAX_NODES,
  LEVENSHTEIN_MAX_CELLS,
  MAX_TOKENIZE_CHARS,
  REGEX_MAX_COST,
  ROUGE_L_MAX_CELLS,
} from '../../domain/evaluators/limits.js';
import { compileRegex } from '../../domain/evaluators/regex-engine.js';
import { stringifyJson } from '../../domain/evaluators/value-utils.js';
import { checkResult, item, metered, thresholdOf } from '../helpers/evaluators.ts';

const TEN_MB = 10 * 1024 * 1024;

/** The bound of each kind of work an evaluator charges. */
const LIMITS: Record<string, number> = {
  contains_scan: CONTAINS_MAX_SCAN,
  regex_cost: REGEX_MAX_COST,
  levenshtein_cells: LEVENSHTEIN_MAX_CELLS,
  rouge_l_cells: ROUGE_L_MAX_CELLS,
  tokenize_chars: 2 * MAX_TOKENIZE_CHARS,
  deep_equal_nodes: DEEP_EQUAL_MAX_NODES,
  schema_units: SCHEMA_WORK_BUDGET,
};

function words(chars: number, swap?: [string, string]): string {
  const vocab = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < chars; i++) {
    let w = vocab[(i * 7) % vocab.length]!;
    if (swap && w === swap[0]) w = swap[1];
    parts.push(w);
    length += w.length + 1;
  }
  return parts.join(' ');
}

const big = words(TEN_MB);
const bigOther = words(TEN_MB, ['alpha', 'omega']);

function deepArrayText(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}
function deepObject(depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

/**
 * Runs one item with a full work budget; asserts every kind of work it charged
 * is a known kind within its bound, and that it gave a valid result or an Error.
 * `used` is the work charged, by kind.
 */
function hostile(config: EvaluatorConfigInput, output: unknown, expected: unknown = null) {
  const ev = compileEvaluator(config);
  const t = metered((budget) => ev(item(output, expected), budget));
  for (const [kind, units] of Object.entries(t.used)) {
    expect(LIMITS[kind], `unknown kind of work ${kind}`).toBeDefined();
    expect(units, `${config.type}: ${kind}`).toBeLessThanOrEqual(LIMITS[kind]!);
  }
  if (t.error !== undefined) {
    expect(t.error).toBeInstanceOf(Error);
    return { error: t.error as Error, result: undefined, used: t.used };
  }
  return { error: undefined, result: checkResult(t.value!, thresholdOf(config)), used: t.used };
}

describe('hostile: 10 MB strings', () => {
  it('exact_match compares 10 MB strings', () => {
    expect(hostile({ type: 'exact_match' }, big, big).result?.score).toBe(1);
    const r = hostile({ type: 'exact_match' }, big, bigOther).result!;
    expect(r.score).toBe(0);
    expect(r.reason.length).toBeLessThanOrEqual(500);
  });

  it('substring checks scan 10 MB', () => {
    expect(hostile({ type: 'contains', value: 'not-there' }, big).result?.score).toBe(0);
    expect(hostile({ type: 'icontains', value: 'ALPHA BETA' }, big).result?.score).toBe(0);
    expect(hostile({ type: 'icontains', value: 'ETA IOTA' }, big).result?.score).toBe(1);
    expect(hostile({ type: 'ends_with' }, big, big.slice(-1000)).result?.score).toBe(1);
    expect(hostile({ type: 'contains_all', values: ['omega', 'zeta'] }, bigOther).result?.score).toBe(1);
  });

  it('contains_any / contains_all refuse 10 MB against many values with a clear message', () => {
    // Partial matches everywhere: the worst case for substring search.
    const values = Array.from({ length: 1_000 }, (_, i) => `alpha theta eps beta X${i}`);
    const { error, used } = hostile({ type: 'contains_any', values }, big);
    expect(error?.message).toMatch(/^inputs too large for contains_any \(\d+ chars × 1000 values > 1000000000\)$/);
    expect(used.contains_scan).toBeUndefined(); // refused before a single search
    const few = values.slice(0, 90);
    const all = hostile({ type: 'contains_all', values: few }, big);
    expect(all.result?.score).toBe(0);
    expect(all.used.contains_scan).toBe(big.length * 90); // one scan per value, no more
  });

  it('a 10 MB target is quoted briefly in the reason', () => {
    const r = hostile({ type: 'contains' }, 'short output', big).result!;
    expect(r.score).toBe(0);
    expect(r.reason.length).toBeLessThan(200);
  });

  it('regex with a simple pattern runs on 10 MB', () => {
    expect(hostile({ type: 'regex', pattern: 'omega', flags: 'i' }, big).result?.score).toBe(0);
    expect(hostile({ type: 'regex', pattern: 'kappa$' }, `${big} kappa`).result?.score).toBe(1);
  });

  it('regex refuses a complex pattern on 10 MB with a clear message', () => {
    const { error, used } = hostile({ type: 'regex', pattern: '(x[a-z]{30}y)+$' }, big);
    expect(error?.message).toMatch(/^input too large for regex \(\d+ chars × program size \d+ > 100000000\)$/);
    expect(used.regex_cost).toBeUndefined();
  });

  it('levenshtein refuses two different 10 MB strings with a clear message', () => {
    const { error, used } = hostile({ type: 'levenshtein' }, big, bigOther);
    expect(error?.message).toMatch(/^inputs too large for levenshtein \(\d+ chars × \d+ chars > 500000000\)$/);
    expect(used.levenshtein_cells).toBeUndefined();
  });

  it('levenshtein answers identical or one-sided 10 MB inputs without the table', () => {
    const same = hostile({ type: 'levenshtein' }, big, big);
    expect(same.result?.score).toBe(1);
    expect(same.used.levenshtein_cells).toBeUndefined();
    const empty = hostile({ type: 'levenshtein' }, big, '');
    expect(empty.result?.score).toBe(0);
    expect(empty.used.levenshtein_cells).toBeUndefined();
  });

  it('levenshtein computes sizes near its bound', () => {
    const a = words(20_000);
    const b = words(20_000, ['beta', 'bete']);
    const { result, used } = hostile({ type: 'levenshtein' }, a, b);
    expect(used.levenshtein_cells).toBe(a.length * b.length);
    expect(used.levenshtein_cells).toBeGreaterThan(LEVENSHTEIN_MAX_CELLS / 2);
    const r = result!;
    expect(r.score).toBeGreaterThan(0.9);
    expect(r.score).toBeLessThan(1);
  });

  it('rouge_l refuses two long different texts with a clear message', () => {
    const { error, used } = hostile({ type: 'rouge_l' }, big, bigOther);
    expect(error?.message).toMatch(/^inputs too large for rouge_l \(\d+ tokens × \d+ tokens > 25000000\)$/);
    expect(used.rouge_l_cells).toBeUndefined();
  });

  it('rouge_l just under the bound finishes and is exact', () => {
    const a = words(24_000); // ~4,500 tokens each: ~20 million LCS cells
    const b = words(24_000, ['alpha', 'omega']);
    const { result, error, used } = hostile({ type: 'rouge_l' }, a, b);
    expect(error).toBeUndefined();
    expect(used.rouge_l_cells).toBeGreaterThan(ROUGE_L_MAX_CELLS / 2);
    const r = result!;
    expect(r.score).toBeCloseTo(0.9, 2); // every 10th token differs
  });

  it('rouge_l handles identical 10 MB texts through the common prefix', () => {
    const { result, used } = hostile({ type: 'rouge_l' }, big, big);
    expect(result?.score).toBe(1);
    expect(used.rouge_l_cells).toBe(0); // all of it is the common prefix: no table at all
  });

  it('token_f1 handles two 10 MB texts', () => {
    const { result, used } = hostile({ type: 'token_f1' }, big, bigOther);
    expect(used.tokenize_chars).toBe(big.length + bigOther.length); // one pass per side
    const r = result!;
    expect(r.score).toBeCloseTo(0.9, 3);
  });

  it('token_f1 refuses texts beyond the tokenising bound', () => {
    const { error, used } = hostile({ type: 'token_f1' }, big + big, 'x');
    expect(error?.message).toMatch(/^output too large for token_f1 \(\d+ chars > 16777216\)$/);
    expect(used.tokenize_chars).toBeUndefined();
  });

  it('numeric_diff rejects a 10 MB output quickly', () => {
    const { error } = hostile({ type: 'numeric_diff', value: 1 }, '1'.repeat(TEN_MB));
    expect(error?.message).toMatch(/^output is not a number: "1{50,}…"$/);
  });

  it('is_json and json_schema parse a 10 MB JSON document', () => {
    const doc = JSON.stringify({ text: big, n: 1 });
    expect(hostile({ type: 'is_json' }, doc).result?.score).toBe(1);
    const schema = { type: 'object', properties: { text: { type: 'string', maxLength: 10 } } };
    const r = hostile({ type: 'json_schema', schema }, doc).result!;
    expect(r.score).toBe(0);
    expect(r.reason).toContain('/text must NOT have more than 10 characters');
  });

  it('json_schema with a million failing items lists only a few errors', () => {
    const arr = Array.from({ length: 1_000_000 }, (_, i) => ({ id: i }));
    const r = hostile({ type: 'json_schema', schema: { type: 'array', items: { properties: { id: { type: 'string' } } } } }, arr)
      .result!;
    expect(r.score).toBe(0);
    expect(r.reason).toMatch(/; and 999997 more$/);
  });
});

describe('hostile: deep JSON (10,000 levels)', () => {
  const deepText = deepArrayText(10_000);
  const deepParsed: unknown = JSON.parse(deepText);
  const deepObj = deepObject(10_000);

  it('exact_match compares deep values without overflowing the stack', () => {
    expect(hostile({ type: 'exact_match' }, deepText, deepParsed).result?.score).toBe(1);
    expect(hostile({ type: 'exact_match' }, deepObj, deepObject(10_000)).result?.score).toBe(1);
    const r = hostile({ type: 'exact_match' }, deepObj, deepObject(10_000, 2)).result!;
    expect(r.score).toBe(0);
    expect(r.reason).toMatch(/^output differs from expected_output at \$….*\.a\.a: values differ$/);
    expect(r.reason.length).toBeLessThanOrEqual(500);
  });

  it('text evaluators serialise deep structured output (native JSON.stringify would overflow)', () => {
    expect(() => JSON.stringify(deepObj)).toThrow(RangeError); // what the fallback is for
    expect(stringifyJson(deepObj)).toBe('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000));
    expect(hostile({ type: 'contains', value: '{"a":1}' }, deepObj).result?.score).toBe(1);
    expect(hostile({ type: 'regex', pattern: '^(\\{"a":)+1\\}+$' }, deepObj).result?.score).toBe(1);
    expect(hostile({ type: 'levenshtein' }, deepObj, deepObj).result?.score).toBe(1);
    expect(hostile({ type: 'token_f1' }, deepObj, 'a 1').result?.score).toBeGreaterThan(0);
  });

  it('is_json accepts deep JSON text', () => {
    expect(hostile({ type: 'is_json' }, deepText).result?.score).toBe(1);
    expect(hostile({ type: 'is_json' }, deepArrayText(1_000_000)).result?.score).toBe(1);
  });

  it('json_match follows paths into deep values', () => {
    const path = `$${'.a'.repeat(4_000)}`;
    const r = hostile({ type: 'json_match', paths: [path, 'a'] }, deepObj, deepObject(10_000)).result!;
    expect(r.score).toBe(1);
    expect(hostile({ type: 'json_match', paths: ['a'] }, deepObj, deepObject(10_000, 2)).result?.score).toBe(0);
  });

  it('json_schema validates deep data, or throws a clean Error for a recursive schema', () => {
    expect(hostile({ type: 'json_schema', schema: { type: 'array' } }, deepText).result?.score).toBe(1);
    const recursive = { $ref: '#/definitions/n', definitions: { n: { type: 'array', items: { $ref: '#/definitions/n' } } } };
    const { error, result } = hostile({ type: 'json_schema', schema: recursive }, deepText);
    if (error) expect(error.message).toBe('output too deeply nested to validate against this schema');
    else expect(result!.score).toBe(1);
    // Shallow data still validates with the same recursive schema.
    expect(hostile({ type: 'json_schema', schema: recursive }, '[[[]],[]]').result?.score).toBe(1);
    expect(hostile({ type: 'json_schema', schema: recursive }, '[[1]]').result?.score).toBe(0);
  });

  it('json_match shares one deep-equal budget across its paths', () => {
    const doc = { list: Array.from({ length: 200_000 }, (_, i) => ({ i })) };
    const paths = new Array<string>(100).fill('list');
    const { error, used } = hostile({ type: 'json_match', paths }, doc, structuredClone(doc));
    expect(error?.message).toBe('values too large to compare (more than 10000000 nodes)');
    expect(used.deep_equal_nodes).toBeLessThanOrEqual(DEEP_EQUAL_MAX_NODES);
    expect(hostile({ type: 'json_match', paths: paths.slice(0, 5) }, doc, structuredClone(doc)).result?.score).toBe(1);
  });

  it('deep-equal gives up cleanly past its node budget instead of hanging', () => {
    const wide = new Array<number>(11_000_000).fill(0);
    const { error, used } = hostile({ type: 'exact_match' }, wide, wide.slice());
    expect(error?.message).toBe('values too large to compare (more than 10000000 nodes)');
    expect(used.deep_equal_nodes).toBe(1); // the 11,000,000 children were refused before the first was visited
  });
});

describe('hostile: pathological regexes', () => {
  it('(a+)+$ against 50,000 a’s and a ! finishes fast (linear-time RE2)', () => {
    const ev = compileEvaluator({ type: 'regex', pattern: '(a+)+$' });
    const subject = `${'a'.repeat(50_000)}!`;
    const t = metered((budget) => ev(item(subject), budget));
    // Linear: the work charged is the subject length times the (small) program, once.
    expect(t.used.regex_cost).toBe(subject.length * compileRegex('(a+)+$').programSize);
    expect(compileRegex('(a+)+$').programSize).toBeLessThan(20);
    // No run of a's ends the subject, so there is no match; a backtracking engine would take forever to say so.
    expect(t.value).toMatchObject({ score: 0, passed: false });
    expect(ev(item('a'.repeat(50_000))).score).toBe(1);
  });

  it.each([
    ['(a|aa)+$', `${'a'.repeat(100_000)}!`],
    ['^(\\w+\\s?)+$', `${'word '.repeat(20_000)}!`],
    ['(.*a){20}', 'a'.repeat(100_000)],
    ['^(([a-z])+.)+[A-Z]([a-z])+$', 'a'.repeat(100_000)],
  ])('%s on a hostile subject finishes fast', (pattern, subject) => {
    const r = hostile({ type: 'regex', pattern }, subject);
    expect(r.error).toBeUndefined();
    expect(r.used.regex_cost).toBe(subject.length * compileRegex(pattern).programSize);
    expect(r.result!.reason).toMatch(/^output (does not )?match/);
  });

  it('a ReDoS pattern inside a JSON schema runs on RE2 too', () => {
    const schema = { type: 'string', pattern: '^(a+)+$' };
    const r = hostile({ type: 'json_schema', schema }, JSON.stringify(`${'a'.repeat(50_000)}!`)).result!;
    expect(r.score).toBe(0);
    expect(r.reason).toContain('must match pattern');
  });
});

describe('hostile: JSON schemas written by tenants', () => {
  /** `a{n}` = allOf [a{n-1}, a{n-1}]: validating against a40 would apply a0 2^40 times. */
  function laughs(container: string): Record<string, unknown> {
    const defs: Record<string, unknown> = { a0: { type: 'string', minLength: 1 } };
    for (let i = 1; i <= 40; i++) {
      defs[`a${i}`] = { allOf: [{ $ref: `#/${container}/a${i - 1}` }, { $ref: `#/${container}/a${i - 1}` }] };
    }
    return { [container]: defs, $ref: `#/${container}/a40` };
  }

  it.each(['definitions', 'x-unknown-keyword'])(
    'exponential $ref fan-out (under %s) stops at the work budget',
    (container) => {
      const { error, used } = hostile({ type: 'json_schema', schema: laughs(container) }, '"x"');
      expect(error?.message).toBe('json_schema validation exceeded its work budget (5000000 units)');
      // 2^40 applications were asked for; the count stopped at the bound.
      expect(used.schema_units).toBeGreaterThan(SCHEMA_WORK_BUDGET * 0.9);
    },
  );

  it('uniqueItems is linear: 200,000 distinct objects validate', () => {
    const arr = Array.from({ length: 200_000 }, (_, i) => ({ id: i, v: 'x'.repeat(20) }));
    const { result, used } = hostile({ type: 'json_schema', schema: { type: 'array', uniqueItems: true } }, arr);
    expect(result?.score).toBe(1);
    expect(used.schema_units).toBeLessThan(50 * arr.length); // tens of units per item (pairwise would be 2e10)
  });

  it('uniqueItems on a million objects stops at the work budget', () => {
    const arr = Array.from({ length: 1_000_000 }, (_, i) => ({ id: i, v: 'x'.repeat(20) }));
    const { error } = hostile({ type: 'json_schema', schema: { type: 'array', uniqueItems: true } }, arr);
    expect(error?.message).toMatch(/exceeded its work budget/);
  });

  it('uniqueItems on a million scalars validates', () => {
    const arr = Array.from({ length: 1_000_000 }, (_, i) => `item-${i}`);
    expect(hostile({ type: 'json_schema', schema: { type: 'array', uniqueItems: true } }, arr).result?.score).toBe(1);
  });

  it('a big const compared many times is charged for its size', () => {
    // Each item is a 5,000-key object one level down (so the data itself is cheap to visit),
    // compared in full with the const every time: the const's size is what must be charged.
    const big = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, i]));
    const schema = { type: 'array', items: { not: { const: { a: big } } } };
    const arr = new Array<unknown>(3_000).fill({ a: { ...big } });
    const { error } = hostile({ type: 'json_schema', schema }, arr);
    expect(error?.message).toMatch(/exceeded its work budget/);
  });
});
