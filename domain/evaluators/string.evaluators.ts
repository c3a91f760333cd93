/**
 * Text evaluators: exact_match (JSON-aware), the substring family, and regex.
 */
import type { EvaluatorConfig } from './evaluator.schema.js';
import { CONTAINS_MAX_SCAN } from './limits.js';
import { compileRegex } from './regex-engine.js';
import { resolveTarget } from './target.js';
import type { EvalItem, ScoreFn } from './types.js';
import { deepEqualJson, quote, structuredForm, toText, truncate } from './value-utils.js';
import type { WorkBudget } from './work-budget.js';

type ConfigOf<T extends EvaluatorConfig['type']> = Extract<EvaluatorConfig, { type: T }>;

/**
 * JSON-aware equality. When both output and target are structured (objects,
 * arrays, numbers, booleans, or strings that parse as a JSON object/array),
 * they are compared structurally, ignoring object key order; `trim` and
 * `case_sensitive` do not apply there. Otherwise both are compared as text
 * (non-strings as JSON, null as '') after the trim / case options.
 */
export function exactMatch(config: ConfigOf<'exact_match'>): ScoreFn {
  return (item, budget) => {
    const { value: target, label } = resolveTarget(config, item);
    const so = structuredForm(item.output);
    const st = structuredForm(target);
    if (so !== undefined && st !== undefined) {
      const r = deepEqualJson(so, st, budget);
      return r.equal
        ? { score: 1, reason: `output equals ${label} (compared as JSON)` }
        : { score: 0, reason: `output differs from ${label} at ${r.path}: ${r.detail}` };
    }
    let a = toText(item.output);
    let b = toText(target);
    if (config.trim) {
      a = a.trim();
      b = b.trim();
    }
    if (!config.case_sensitive) {
      a = a.toLowerCase();
      b = b.toLowerCase();
    }
    return a === b
      ? { score: 1, reason: `output equals ${label}` }
      : { score: 0, reason: `output does not equal ${label}: got ${quote(a)}, expected ${quote(b)}` };
  };
}

type SubstringType = 'contains' | 'icontains' | 'not_contains' | 'starts_with' | 'ends_with';

/** Output text and target text, lower-cased when the check is case-insensitive. The target must not be empty. */
function substringOperands(
  config: { value?: string | undefined },
  item: EvalItem,
  caseSensitive: boolean,
): { out: string; needle: string; shown: string; label: string } {
  const { value, label } = resolveTarget(config, item);
  const shown = toText(value);
  if (shown === '') {
    throw new Error(
      label === 'value' ? 'value is empty: nothing to look for' : 'expected_output is empty: set it on the item or set value in the config',
    );
  }
  const out = toText(item.output);
  return caseSensitive
    ? { out, needle: shown, shown, label }
    : { out: out.toLowerCase(), needle: shown.toLowerCase(), shown, label };
}

export function substring(config: ConfigOf<SubstringType>): ScoreFn {
  const caseSensitive = 'case_sensitive' in config ? config.case_sensitive : false;
  const ci = caseSensitive ? '' : ' (case-insensitive)';
  return (item) => {
    const { out, needle, shown } = substringOperands(config, item, caseSensitive);
    const q = quote(shown);
    switch (config.type) {
      case 'contains':
      case 'icontains':
        return out.includes(needle)
          ? { score: 1, reason: `output contains ${q}${ci}` }
          : { score: 0, reason: `output does not contain ${q}${ci}` };
      case 'not_contains':
        return out.includes(needle)
          ? { score: 0, reason: `output contains ${q}${ci}, which it must not` }
          : { score: 1, reason: `output does not contain ${q}${ci}` };
      case 'starts_with':
        return out.startsWith(needle)
          ? { score: 1, reason: `output starts with ${q}${ci}` }
          : { score: 0, reason: `output does not start with ${q}${ci}: it starts with ${quote(out, 40)}` };
      case 'ends_with':
        return out.endsWith(needle)
          ? { score: 1, reason: `output ends with ${q}${ci}` }
          : { score: 0, reason: `output does not end with ${q}${ci}: it ends with ${quote(out.slice(-40), 40)}` };
    }
  };
}

function listValues(values: readonly string[], max = 400): string {
  const parts: string[] = [];
  let length = 0;
  for (const v of values) {
    const s = truncate(v, 60);
    if (length + s.length > max) {
      parts.push(`… (${values.length - parts.length} more)`);
      break;
    }
    parts.push(s);
    length += s.length + 2;
  }
  return parts.join(', ');
}

/**
 * The output text for a multi-value search. Each value is one scan of the
 * output, so output length × number of values is charged before any search.
 */
function scanText(config: ConfigOf<'contains_any' | 'contains_all'>, output: unknown, budget: WorkBudget): string {
  const raw = toText(output);
  budget.charge(
    'contains_scan',
    raw.length * config.values.length,
    CONTAINS_MAX_SCAN,
    () => `inputs too large for ${config.type} (${raw.length} chars × ${config.values.length} values > ${CONTAINS_MAX_SCAN})`,
  );
  return config.case_sensitive ? raw : raw.toLowerCase();
}

/** Score 1 when the output contains at least one of `values`, else 0. */
export function containsAny(config: ConfigOf<'contains_any'>): ScoreFn {
  const needles = config.case_sensitive ? config.values : config.values.map((v) => v.toLowerCase());
  return (item, budget) => {
    const out = scanText(config, item.output, budget);
    const i = needles.findIndex((n) => out.includes(n));
    return i >= 0
      ? { score: 1, reason: `output contains ${quote(config.values[i]!)}` }
      : { score: 0, reason: `output contains none of: ${listValues(config.values)}` };
  };
}

/** Score = share of `values` the output contains; the reason lists the missing ones. */
export function containsAll(config: ConfigOf<'contains_all'>): ScoreFn {
  const needles = config.case_sensitive ? config.values : config.values.map((v) => v.toLowerCase());
  return (item, budget) => {
    const out = scanText(config, item.output, budget);
    const missing = config.values.filter((_, i) => !out.includes(needles[i]!));
    const total = config.values.length;
    if (missing.length === 0) return { score: 1, reason: `output contains all ${total} values` };
    return { score: (total - missing.length) / total, reason: `missing: ${listValues(missing)}` };
  };
}

/** Score 1 when the RE2 pattern matches anywhere in the output text (unanchored), else 0. */
export function regex(config: ConfigOf<'regex'>): ScoreFn {
  const re = compileRegex(config.pattern, config.flags);
  const shown = `/${truncate(config.pattern, 100)}/${config.flags}`;
  return (item, budget) =>
    re.test(toText(item.output), budget)
      ? { score: 1, reason: `output matches ${shown}` }
      : { score: 0, reason: `output does not match ${shown}` };
}
