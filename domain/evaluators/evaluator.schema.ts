/**
 * Configuration schema of the deterministic evaluators.
 *
 * This module imports nothing but zod so that it can be shared by routers,
 * entities and the OpenAPI contract without pulling in the evaluation engines.
 * It checks the *shape* of a config. Two checks need an engine and live in
 * `./evaluator-config.ts` (`validatedEvaluatorConfigSchema`): that a regex
 * pattern compiles under RE2 and that a JSON schema compiles under ajv. Use
 * that schema (or `parseEvaluatorConfig`) where a config is accepted from a user.
 *
 * Default thresholds. `passed` is always `score >= threshold`:
 * - Binary evaluators (exact_match, contains, icontains, not_contains,
 *   starts_with, ends_with, contains_any, regex, is_json, json_schema) score
 *   0 or 1, so the default threshold is 1.
 * - contains_all, json_match and numeric_diff also default to 1. Their score
 *   can be fractional (share of values or paths found, closeness of numbers),
 *   but by default they pass only when every value or path matches, or when
 *   the number is within tolerance.
 * - rouge_l defaults to 0.75, the default that promptfoo documents and uses
 *   for its ROUGE assertions (`assertion.threshold ?? 0.75`).
 * - levenshtein and token_f1 default to 0.5. No widely used normalised
 *   default exists for them (promptfoo's levenshtein threshold is an absolute
 *   edit distance of 5, which is a different scale).
 *
 * `value`: on the evaluators that compare the output with a target, `value`
 * (when present) is used as the target instead of the item's
 * `expected_output`. Evaluators that have no target (regex, is_json,
 * json_schema, contains_any, contains_all) reject `value` as an unknown
 * field, so a config that would silently ignore it can't be saved.
 */
import { z } from 'zod';
import { llmJudgeConfigSchema } from './llm-judge/llm-judge.schema.ts';

/** Longest regex pattern accepted (UTF-16 code units). */
export const MAX_REGEX_PATTERN_LENGTH = 1_000;
/** Largest JSON value accepted in `value` / `schema` (serialised characters, approximately). */
export const MAX_CONFIG_JSON_CHARS = 256 * 1024;
/** Deepest nesting accepted in `value` / `schema`. */
export const MAX_CONFIG_JSON_DEPTH = 64;
/** Most entries in `values` (contains_any / contains_all) and `paths` (json_match). */
export const MAX_LIST_ENTRIES = 1_000;
/** Longest single entry in `values` or `paths`. */
export const MAX_LIST_ENTRY_LENGTH = 10_000;

export const DEFAULT_BINARY_THRESHOLD = 1;
export const DEFAULT_ROUGE_L_THRESHOLD = 0.75;
export const DEFAULT_SIMILARITY_THRESHOLD = 0.5;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/**
 * Checks, without recursion, that `input` is a JSON value (null, boolean,
 * finite number, string, array, plain object) no deeper than `maxDepth` and
 * with about `maxChars` characters at most when serialised. Returns an error
 * message or null.
 */
export function checkJsonValue(
  input: unknown,
  maxDepth = MAX_CONFIG_JSON_DEPTH,
  maxChars = MAX_CONFIG_JSON_CHARS,
): string | null {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: input, depth: 0 }];
  let chars = 0;
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (depth > maxDepth) return `nested deeper than ${maxDepth} levels`;
    if (v === null || typeof v === 'boolean') {
      chars += 5;
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return 'numbers must be finite';
      chars += 8;
    } else if (typeof v === 'string') {
      chars += v.length + 2;
    } else if (Array.isArray(v)) {
      chars += 2;
      for (const e of v) stack.push({ v: e, depth: depth + 1 });
    } else if (typeof v === 'object' && isPlainObject(v)) {
      chars += 2;
      for (const [k, e] of Object.entries(v)) {
        chars += k.length + 3;
        stack.push({ v: e, depth: depth + 1 });
      }
    } else {
      return `not a JSON value (${typeof v})`;
    }
    if (chars > maxChars) return `larger than ${maxChars} characters`;
  }
  return null;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A segment of a parsed JSON path: an object key or an array index. */
export type JsonPathSegment = { kind: 'key'; key: string } | { kind: 'index'; index: number };

export type JsonPathParseResult =
  | { ok: true; segments: JsonPathSegment[] }
  | { ok: false; error: string };

/**
 * Parses a simple JSON path. Accepted forms, with an optional leading `$`:
 *   `a.b[0].c`, `$.a.b`, `$[2]`, `[0].name`, `a["key.with.dots"]`, `a['x']`, `$` (the whole value).
 * Dotted keys may contain any character except `.`, `[`, `]`, quotes and whitespace;
 * quoted keys may contain anything except their own quote character.
 */
export function parseJsonPath(path: string): JsonPathParseResult {
  const segments: JsonPathSegment[] = [];
  let i = 0;
  const n = path.length;
  if (n === 0) return { ok: false, error: 'path is empty' };
  let first = true;
  if (path[0] === '$') {
    i = 1;
    first = false;
    if (n === 1) return { ok: true, segments };
  }
  while (i < n) {
    const c = path[i];
    if (c === '[') {
      const close = path.indexOf(']', i + 1);
      const q = path[i + 1];
      if (q === '"' || q === "'") {
        const endQuote = path.indexOf(q, i + 2);
        if (endQuote === -1 || path[endQuote + 1] !== ']') {
          return { ok: false, error: `unterminated quoted key at position ${i}` };
        }
        segments.push({ kind: 'key', key: path.slice(i + 2, endQuote) });
        i = endQuote + 2;
      } else {
        if (close === -1) return { ok: false, error: `missing ] after position ${i}` };
        const inner = path.slice(i + 1, close);
        if (!/^(0|[1-9][0-9]{0,8})$/.test(inner)) {
          return { ok: false, error: `invalid array index [${inner}] at position ${i}` };
        }
        segments.push({ kind: 'index', index: Number(inner) });
        i = close + 1;
      }
    } else {
      if (c === '.') {
        i += 1;
      } else if (!first) {
        return { ok: false, error: `unexpected character ${JSON.stringify(c)} at position ${i}` };
      }
      const start = i;
      while (i < n && !/[.[\]"'\s]/.test(path[i]!)) i += 1;
      if (i === start) return { ok: false, error: `empty key at position ${start}` };
      segments.push({ kind: 'key', key: path.slice(start, i) });
    }
    first = false;
  }
  return { ok: true, segments };
}

// ---------------------------------------------------------------------------
// Field schemas
// ---------------------------------------------------------------------------

/** Numbers accepted from strings: optional sign, decimal digits, optional fraction and exponent. */
export const NUMERIC_STRING = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

const threshold = (defaultValue: number) =>
  z
    .number()
    .min(0, 'threshold must be between 0 and 1')
    .max(1, 'threshold must be between 0 and 1')
    .default(defaultValue);

const binaryThreshold = () => threshold(DEFAULT_BINARY_THRESHOLD);

/** A JSON value, checked without recursion (so a hostile config cannot overflow the stack). */
const jsonValue = () =>
  z.unknown().superRefine((v, ctx) => {
    if (v === undefined) return;
    const err = checkJsonValue(v);
    if (err !== null) ctx.addIssue({ code: 'custom', message: `value must be a JSON value: ${err}` });
  }).optional();

const textValue = () => z.string().max(MAX_CONFIG_JSON_CHARS).optional();

const caseSensitive = () => z.boolean().default(true);
const trim = () => z.boolean().default(true);

const nonEmptyText = z.string().min(1, 'must not be empty').max(MAX_LIST_ENTRY_LENGTH);

const valuesList = z
  .array(nonEmptyText)
  .min(1, 'values must list at least one string')
  .max(MAX_LIST_ENTRIES);

const numericValue = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  const ok = typeof v === 'number' ? Number.isFinite(v) : NUMERIC_STRING.test(v.trim());
  if (!ok) ctx.addIssue({ code: 'custom', message: 'value must be a finite number or a numeric string' });
});

// ---------------------------------------------------------------------------
// Evaluator configs
// ---------------------------------------------------------------------------

export const exactMatchConfigSchema = z.strictObject({
  type: z.literal('exact_match'),
  threshold: binaryThreshold(),
  value: jsonValue(),
  trim: trim(),
  case_sensitive: caseSensitive(),
});

export const containsConfigSchema = z.strictObject({
  type: z.literal('contains'),
  threshold: binaryThreshold(),
  value: textValue(),
  case_sensitive: caseSensitive(),
});

/** Always case-insensitive, so it takes no case_sensitive option. */
export const icontainsConfigSchema = z.strictObject({
  type: z.literal('icontains'),
  threshold: binaryThreshold(),
  value: textValue(),
});

export const notContainsConfigSchema = z.strictObject({
  type: z.literal('not_contains'),
  threshold: binaryThreshold(),
  value: textValue(),
  case_sensitive: caseSensitive(),
});

export const startsWithConfigSchema = z.strictObject({
  type: z.literal('starts_with'),
  threshold: binaryThreshold(),
  value: textValue(),
  case_sensitive: caseSensitive(),
});

export const endsWithConfigSchema = z.strictObject({
  type: z.literal('ends_with'),
  threshold: binaryThreshold(),
  value: textValue(),
  case_sensitive: caseSensitive(),
});

export const containsAnyConfigSchema = z.strictObject({
  type: z.literal('contains_any'),
  threshold: binaryThreshold(),
  values: valuesList,
  case_sensitive: caseSensitive(),
});

/** Score = share of `values` found; with the default threshold 1 every value must be present. */
export const containsAllConfigSchema = z.strictObject({
  type: z.literal('contains_all'),
  threshold: binaryThreshold(),
  values: valuesList,
  case_sensitive: caseSensitive(),
});

/**
 * RE2 syntax (no backreferences or lookaround), unanchored search like RegExp#test.
 * Allowed flags: i (case-insensitive), m (^/$ match at line breaks), s (. matches \n).
 * Whether the pattern compiles is checked by `validatedEvaluatorConfigSchema`.
 */
export const regexConfigSchema = z.strictObject({
  type: z.literal('regex'),
  threshold: binaryThreshold(),
  pattern: z
    .string({ error: 'pattern is required' })
    .min(1, 'pattern must not be empty')
    .max(MAX_REGEX_PATTERN_LENGTH, `pattern must be at most ${MAX_REGEX_PATTERN_LENGTH} characters`),
  flags: z
    .string()
    .regex(/^[ims]*$/, 'flags may only contain i, m and s')
    .refine((f) => new Set(f).size === f.length, 'flags must not repeat a letter')
    .default(''),
});

export const isJsonConfigSchema = z.strictObject({
  type: z.literal('is_json'),
  threshold: binaryThreshold(),
});

/**
 * `schema` is a JSON Schema object (draft-07 by default; 2019-09 and 2020-12 when `$schema` names them).
 * Whether it compiles is checked by `validatedEvaluatorConfigSchema`.
 */
export const jsonSchemaConfigSchema = z.strictObject({
  type: z.literal('json_schema'),
  threshold: binaryThreshold(),
  schema: z
    .record(z.string(), z.unknown(), { error: 'schema must be a JSON object' })
    .superRefine((v, ctx) => {
      const err = checkJsonValue(v);
      if (err !== null) ctx.addIssue({ code: 'custom', message: `schema must be a JSON value: ${err}` });
    }),
});

/** Score = share of `paths` whose values are deep-equal in output and target. */
export const jsonMatchConfigSchema = z.strictObject({
  type: z.literal('json_match'),
  threshold: binaryThreshold(),
  value: jsonValue(),
  paths: z
    .array(
      z
        .string()
        .max(MAX_LIST_ENTRY_LENGTH)
        .superRefine((p, ctx) => {
          const parsed = parseJsonPath(p);
          if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `invalid path ${JSON.stringify(p)}: ${parsed.error}` });
        }),
    )
    .min(1, 'paths must list at least one path')
    .max(MAX_LIST_ENTRIES),
});

/** Score = 1 − distance / max(len output, len target), 1 when both are empty. Lengths in UTF-16 code units. */
export const levenshteinConfigSchema = z.strictObject({
  type: z.literal('levenshtein'),
  threshold: threshold(DEFAULT_SIMILARITY_THRESHOLD),
  value: textValue(),
  trim: trim(),
  case_sensitive: caseSensitive(),
});

/**
 * a = output, b = target, d = |a − b|.
 * Within tolerance: d ≤ tolerance, or with `relative`, d ≤ tolerance × |b|.
 * Score = 1 within tolerance, else max(0, 1 − d / max(|a|, |b|)) (the relative
 * difference; max(|a|,|b|) > 0 whenever d > 0). With the default threshold 1,
 * passed ⇔ within tolerance.
 */
export const numericDiffConfigSchema = z.strictObject({
  type: z.literal('numeric_diff'),
  threshold: binaryThreshold(),
  value: numericValue.optional(),
  tolerance: z.number().min(0, 'tolerance must be >= 0').refine(Number.isFinite, 'tolerance must be finite').default(0),
  relative: z.boolean().default(false),
});

/** SQuAD-style token F1 (lower-cased letter/digit runs as tokens, multiset overlap). */
export const tokenF1ConfigSchema = z.strictObject({
  type: z.literal('token_f1'),
  threshold: threshold(DEFAULT_SIMILARITY_THRESHOLD),
  value: textValue(),
});

/** ROUGE-L F-measure (β = 1) over the same tokens as token_f1, via longest common subsequence. */
export const rougeLConfigSchema = z.strictObject({
  type: z.literal('rouge_l'),
  threshold: threshold(DEFAULT_ROUGE_L_THRESHOLD),
  value: textValue(),
});

export const evaluatorConfigSchema = z.discriminatedUnion('type', [
  exactMatchConfigSchema,
  containsConfigSchema,
  icontainsConfigSchema,
  notContainsConfigSchema,
  startsWithConfigSchema,
  endsWithConfigSchema,
  containsAnyConfigSchema,
  containsAllConfigSchema,
  regexConfigSchema,
  isJsonConfigSchema,
  jsonSchemaConfigSchema,
  jsonMatchConfigSchema,
  levenshteinConfigSchema,
  numericDiffConfigSchema,
  tokenF1ConfigSchema,
  rougeLConfigSchema,
  llmJudgeConfigSchema,
]).meta({ id: 'EvaluatorConfig' });

/** A parsed config: defaults (threshold, trim, case_sensitive, flags, tolerance, relative) are filled in. */
export type EvaluatorConfig = z.infer<typeof evaluatorConfigSchema>;
/** A config as a client may send it (defaults optional). */
export type EvaluatorConfigInput = z.input<typeof evaluatorConfigSchema>;
export type EvaluatorType = EvaluatorConfig['type'];

export const EVALUATOR_TYPES = evaluatorConfigSchema.options.map((o) => o.shape.type.value) as EvaluatorType[];

// ---------------------------------------------------------------------------
// Several criteria
// ---------------------------------------------------------------------------

export const MAX_CRITERIA = 20;
export const MAX_CRITERION_NAME_LENGTH = 64;
export const MAX_CRITERION_WEIGHT = 1_000;

/**
 * One criterion: a name (letters, digits, `_ . : -`; it names the criterion in
 * results, filters, JUnit and CSV), any evaluator, and a weight in the item's
 * score (default 1).
 */
export const criterionSchema = z.strictObject({
  name: z
    .string({ error: 'name is required' })
    .min(1, 'name must not be empty')
    .max(MAX_CRITERION_NAME_LENGTH, `name must be at most ${MAX_CRITERION_NAME_LENGTH} characters`)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'name must start with a letter or digit and hold only letters, digits, _ . : -'),
  evaluator: evaluatorConfigSchema,
  weight: z
    .number()
    .gt(0, 'weight must be > 0')
    .max(MAX_CRITERION_WEIGHT, `weight must be at most ${MAX_CRITERION_WEIGHT}`)
    .default(1),
});

/** How an item's status follows its criteria: all pass, any passes, or at least `min_passed` pass. */
export const passPolicySchema = z.union([
  z.enum(['all', 'any']),
  z.strictObject({ min_passed: z.int().min(1, 'min_passed must be at least 1').max(MAX_CRITERIA) }),
]);

/**
 * Several criteria scored on every item. The item's score is the weighted mean
 * of its criteria's scores; it passes by `pass` (default `all`); it is an
 * error when any criterion errors (each criterion's own outcome is kept).
 */
export const criteriaConfigSchema = z
  .strictObject({
    /** may be left out: an evaluator without `type` is a criteria list (stored and answered with it) */
    type: z.literal('criteria').default('criteria'),
    criteria: z
      .array(criterionSchema, {
        error: (iss) => (iss.input === undefined ? 'an evaluator needs a "type" (one evaluator) or "criteria" (several)' : 'criteria must be an array'),
      })
      .min(1, 'criteria must list at least one criterion')
      .max(MAX_CRITERIA, `criteria must list at most ${MAX_CRITERIA} criteria`),
    pass: passPolicySchema.default('all'),
  })
  .superRefine((v, ctx) => {
    const seen = new Set<string>();
    v.criteria.forEach((c, i) => {
      if (seen.has(c.name)) ctx.addIssue({ code: 'custom', path: ['criteria', i, 'name'], message: `duplicate criterion name "${c.name}"` });
      seen.add(c.name);
    });
    if (typeof v.pass === 'object' && v.pass.min_passed > v.criteria.length) {
      ctx.addIssue({ code: 'custom', path: ['pass', 'min_passed'], message: `min_passed (${v.pass.min_passed}) exceeds the ${v.criteria.length} criteria` });
    }
  });

export type CriteriaConfig = z.infer<typeof criteriaConfigSchema>;
export type PassPolicy = CriteriaConfig['pass'];

/** An eval version's evaluator: one evaluator, or several criteria (no `type`, or `type: "criteria"`). */
export const evaluatorSpecSchema = z.discriminatedUnion('type', [evaluatorConfigSchema, criteriaConfigSchema]);
export type EvaluatorSpec = z.infer<typeof evaluatorSpecSchema>;
export type EvaluatorSpecInput = z.input<typeof evaluatorSpecSchema>;

export function isCriteriaConfig(spec: EvaluatorSpec): spec is CriteriaConfig {
  return spec.type === 'criteria';
}
