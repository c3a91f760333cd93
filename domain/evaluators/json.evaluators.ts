/**
 * JSON evaluators: is_json, json_schema (ajv) and json_match (values at paths).
 */
import type { ErrorObject } from 'ajv';
import { parseJsonPath, type EvaluatorConfig, type JsonPathSegment } from './evaluator.schema.js';
import { MAX_SCHEMA_ERRORS_IN_REASON } from './limits.js';
import { compileJsonSchema } from './json-schema.js';
import { resolveTarget } from './target.js';
import type { ScoreFn } from './types.js';
import { asJson, deepEqualJson, truncate } from './value-utils.js';

type ConfigOf<T extends EvaluatorConfig['type']> = Extract<EvaluatorConfig, { type: T }>;

/** Passes when the output is a string that parses as JSON, or an already-structured value. null/undefined fail. */
export function isJson(): ScoreFn {
  return (item) => {
    const out = item.output;
    if (out === null || out === undefined) return { score: 0, reason: 'output is empty' };
    if (typeof out !== 'string') return { score: 1, reason: `output is a JSON ${Array.isArray(out) ? 'array' : typeof out}` };
    const parsed = asJson(out);
    return parsed.ok
      ? { score: 1, reason: 'output is valid JSON' }
      : { score: 0, reason: `output is not valid JSON: ${parsed.error}` };
  };
}

// ---------------------------------------------------------------------------
// json_schema
// ---------------------------------------------------------------------------

function describeError(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(root)' : e.instancePath;
  let extra = '';
  if (e.keyword === 'additionalProperties' && typeof e.params.additionalProperty === 'string') {
    extra = ` (${JSON.stringify(truncate(e.params.additionalProperty, 40))})`;
  }
  return `${truncate(where, 80)} ${e.message ?? e.keyword}${extra}`;
}

/** Output (parsed when it is a string) is validated against the schema. A string that is not JSON fails. */
export function jsonSchema(config: ConfigOf<'json_schema'>): ScoreFn {
  const schema = compileJsonSchema(config.schema);
  return (item, budget) => {
    if (item.output === undefined || item.output === null) return { score: 0, reason: 'output is empty' };
    const parsed = asJson(item.output);
    if (!parsed.ok) return { score: 0, reason: `output is not valid JSON: ${parsed.error}` };
    const check = schema.validate(parsed.value, budget);
    if (check.valid) return { score: 1, reason: 'output matches the JSON schema' };
    const listed = check.errors.slice(0, MAX_SCHEMA_ERRORS_IN_REASON).map(describeError);
    const more = check.errors.length > listed.length ? `; and ${check.errors.length - listed.length} more` : '';
    return { score: 0, reason: `output does not match the JSON schema: ${listed.join('; ')}${more}` };
  };
}

// ---------------------------------------------------------------------------
// json_match
// ---------------------------------------------------------------------------

type Lookup = { found: true; value: unknown } | { found: false };

function lookup(root: unknown, segments: readonly JsonPathSegment[]): Lookup {
  let cur = root;
  for (const seg of segments) {
    if (seg.kind === 'index') {
      if (!Array.isArray(cur) || seg.index >= cur.length) return { found: false };
      cur = cur[seg.index];
    } else {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, seg.key)) {
        return { found: false };
      }
      cur = (cur as Record<string, unknown>)[seg.key];
    }
    if (cur === undefined) return { found: false };
  }
  return { found: true, value: cur };
}

/**
 * Score = share of `paths` whose values are deep-equal (key order ignored) in
 * the output and the target, both parsed as JSON when they are strings. A path
 * missing on either side counts as a mismatch. An output that is not JSON
 * scores 0; a target that is not JSON (or is empty) is a per-item error.
 */
export function jsonMatch(config: ConfigOf<'json_match'>): ScoreFn {
  const paths = config.paths.map((p) => {
    const parsed = parseJsonPath(p);
    if (!parsed.ok) throw new Error(`invalid path ${JSON.stringify(p)}: ${parsed.error}`);
    return { text: p, segments: parsed.segments };
  });
  return (item, budget) => {
    const { value, label } = resolveTarget(config, item);
    if (value === null || value === undefined || value === '') throw new Error(`${label} is empty: nothing to match paths against`);
    const target = asJson(value);
    if (!target.ok) throw new Error(`${label} is not valid JSON: ${target.error}`);
    const output = asJson(item.output);
    if (!output.ok) return { score: 0, reason: `output is not valid JSON: ${output.error}` };
    const mismatched: string[] = [];
    // All paths of the item share the item's deep-equal budget.
    for (const p of paths) {
      const want = lookup(target.value, p.segments);
      const got = lookup(output.value, p.segments);
      const name = truncate(p.text, 60);
      if (!want.found) mismatched.push(`${name} (missing in ${label})`);
      else if (!got.found) mismatched.push(`${name} (missing in output)`);
      else {
        const eq = deepEqualJson(got.value, want.value, budget);
        if (!eq.equal) mismatched.push(`${name} (differs${eq.path === '$' ? '' : ` at ${eq.path}`})`);
      }
    }
    const total = paths.length;
    const matched = total - mismatched.length;
    if (mismatched.length === 0) return { score: 1, reason: total === 1 ? 'the path matches' : `all ${total} paths match` };
    return { score: matched / total, reason: `${matched}/${total} paths match; mismatched: ${mismatched.join(', ')}` };
  };
}
