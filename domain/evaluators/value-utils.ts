/**
 * Helpers for item fields, which come from Postgres jsonb and may be any JSON
 * value, possibly huge or deeply nested. Nothing here recurses on the data
 * without a bound: deep values are walked with explicit stacks.
 */
import { DEEP_EQUAL_MAX_NODES, MAX_REASON_LENGTH } from './limits.js';
import { NUMERIC_STRING } from './evaluator.schema.js';
import { WorkBudget } from './work-budget.js';

/**
 * JSON.stringify without the native recursion limit: tries the native one first
 * and falls back to an iterative serialiser (same output for JSON values) when
 * the value is too deeply nested for the stack.
 */
export function stringifyJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return stringifyIterative(value);
  }
}

type Task = { lit: string } | { val: unknown };

/**
 * JSON text of a JSON value with object keys sorted, so that structurally equal
 * values (key order aside) give the same string. Recursion is capped at 1,000
 * levels; deeper values go through the iterative serialiser.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  try {
    return canonicalRecursive(value, 0);
  } catch (e) {
    if (e !== TOO_DEEP) throw e;
    return stringifyIterative(value, true) ?? 'null';
  }
}

const TOO_DEEP = Symbol('too deep');

/** Faster than the iterative serialiser; gives up (TOO_DEEP) past 1,000 levels. */
function canonicalRecursive(v: unknown, depth: number): string {
  if (v === null || typeof v !== 'object') {
    return typeof v === 'function' || typeof v === 'symbol' ? 'null' : (JSON.stringify(v) ?? 'null');
  }
  if (depth > 1_000) throw TOO_DEEP;
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) s += ',';
      s += canonicalRecursive(v[i], depth + 1);
    }
    return `${s}]`;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let s = '{';
  let first = true;
  for (const k of keys) {
    const x = o[k];
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
    if (!first) s += ',';
    first = false;
    s += `${JSON.stringify(k)}:${canonicalRecursive(x, depth + 1)}`;
  }
  return `${s}}`;
}

function stringifyIterative(root: unknown, sortKeys = false): string | undefined {
  if (root === undefined || typeof root === 'function' || typeof root === 'symbol') return undefined;
  const out: string[] = [];
  const stack: Task[] = [{ val: root }];
  while (stack.length > 0) {
    const task = stack.pop()!;
    if ('lit' in task) {
      out.push(task.lit);
      continue;
    }
    let v = task.val;
    if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      v = (v as { toJSON: () => unknown }).toJSON();
    }
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') {
      // Object entries with such values were skipped already; here only array
      // elements (and a toJSON() returning undefined) are left: both become null.
      out.push('null');
      continue;
    }
    if (v === null || typeof v !== 'object') {
      out.push(JSON.stringify(v));
      continue;
    }
    if (Array.isArray(v)) {
      out.push('[');
      stack.push({ lit: ']' });
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ val: v[i] });
        if (i > 0) stack.push({ lit: ',' });
      }
      continue;
    }
    const entries = Object.entries(v).filter(
      ([, e]) => e !== undefined && typeof e !== 'function' && typeof e !== 'symbol',
    );
    if (sortKeys) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    out.push('{');
    stack.push({ lit: '}' });
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, e] = entries[i]!;
      stack.push({ val: e });
      stack.push({ lit: `${i > 0 ? ',' : ''}${JSON.stringify(k)}:` });
    }
  }
  return out.join('');
}

/** The text an evaluator compares: strings as they are, null/undefined as '', anything else as JSON. */
export function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  return stringifyJson(value) ?? '';
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; error: string };

/** JSON.parse that reports failure instead of throwing. V8's parser does not recurse, so deep input is fine. */
export function parseJsonText(text: string): JsonParseResult {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: errorMessage(e) };
  }
}

/**
 * A field as a JSON value: strings are parsed as JSON, other values are taken as they are.
 * `undefined` is reported as not JSON.
 */
export function asJson(value: unknown): JsonParseResult {
  if (typeof value === 'string') return parseJsonText(value);
  if (value === undefined) return { ok: false, error: 'no value' };
  return { ok: true, value };
}

/**
 * The structured form of a field for exact_match: objects, arrays, numbers and
 * booleans as they are; strings only when they parse as a JSON object or array.
 * Returns undefined for everything else (plain strings, null, undefined).
 */
export function structuredForm(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'object' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const t = value.trim();
    const first = t[0];
    if (first !== '{' && first !== '[') return undefined;
    const parsed = parseJsonText(t);
    return parsed.ok && parsed.value !== null && typeof parsed.value === 'object' ? parsed.value : undefined;
  }
  return undefined;
}

export type DeepEqualResult = { equal: true } | { equal: false; path: string; detail: string };

/**
 * Structural equality of two JSON values (object key order ignored; keys whose
 * value is undefined count as absent), without recursion: an explicit stack of
 * open containers, one entry per nesting level, kept in parallel arrays. On a
 * difference, returns the path of the first one in document order. Throws when
 * more than DEEP_EQUAL_MAX_NODES values would be visited (`deep_equal_nodes`,
 * charged before a container's children are visited); pass the same `budget`
 * to several calls to share that bound between them.
 */
export function deepEqualJson(a: unknown, b: unknown, budget: WorkBudget = new WorkBudget()): DeepEqualResult {
  // Stack of open container pairs: the containers, their (object) key list, the next child index,
  // the child count, and the key under which the pair was reached.
  const fx: unknown[] = [];
  const fy: unknown[] = [];
  const fKeys: Array<string[] | null> = [];
  const fNext: number[] = [];
  const fLen: number[] = [];
  const fKey: Array<string | number> = [];
  const tooLarge = (): string => `values too large to compare (more than ${DEEP_EQUAL_MAX_NODES} nodes)`;
  budget.charge('deep_equal_nodes', 1, DEEP_EQUAL_MAX_NODES, tooLarge);

  const fail = (detail: string, last?: string | number): DeepEqualResult => {
    const segs = fKey.slice(1);
    if (last !== undefined) segs.push(last);
    return { equal: false, path: formatPath(segs), detail };
  };

  /** Compares a pair that is not ===; opens it when both are containers. Returns a failure or null. */
  const open = (x: unknown, y: unknown, key: string | number | undefined): DeepEqualResult | null => {
    if (!bothContainers(x, y)) return fail(describeLeafDifference(x, y), key);
    const xa = Array.isArray(x);
    const ya = Array.isArray(y);
    if (xa !== ya) return fail('array vs object', key);
    let keys: string[] | null = null;
    let length: number;
    if (xa && ya) {
      if (x.length !== y.length) return fail(`array length ${x.length} vs ${y.length}`, key);
      length = x.length;
    } else {
      const xo = x as Record<string, unknown>;
      const yo = y as Record<string, unknown>;
      keys = Object.keys(xo).filter((k) => xo[k] !== undefined);
      let yCount = 0;
      for (const k in yo) if (Object.hasOwn(yo, k) && yo[k] !== undefined) yCount += 1;
      const missing =
        keys.find((k) => !Object.hasOwn(yo, k) || yo[k] === undefined) ??
        (keys.length !== yCount
          ? (Object.keys(yo).find((k) => yo[k] !== undefined && (!Object.hasOwn(xo, k) || xo[k] === undefined)) ?? '')
          : undefined);
      if (missing !== undefined) return fail(`key ${JSON.stringify(truncate(missing, 60))} missing on one side`, key);
      length = keys.length;
    }
    budget.charge('deep_equal_nodes', length, DEEP_EQUAL_MAX_NODES, tooLarge);
    fx.push(x);
    fy.push(y);
    fKeys.push(keys);
    fNext.push(0);
    fLen.push(length);
    fKey.push(key ?? '');
    return null;
  };

  if (a === b) return { equal: true };
  const rootResult = open(a, b, undefined);
  if (rootResult !== null) return rootResult;
  while (fx.length > 0) {
    const top = fx.length - 1;
    const i = fNext[top]!;
    if (i >= fLen[top]!) {
      fx.pop();
      fy.pop();
      fKeys.pop();
      fNext.pop();
      fLen.pop();
      fKey.pop();
      continue;
    }
    fNext[top] = i + 1;
    const keys = fKeys[top]!;
    let xv: unknown;
    let yv: unknown;
    let key: string | number;
    if (keys === null) {
      key = i;
      xv = (fx[top] as unknown[])[i];
      yv = (fy[top] as unknown[])[i];
    } else {
      key = keys[i]!;
      xv = (fx[top] as Record<string, unknown>)[key];
      yv = (fy[top] as Record<string, unknown>)[key];
    }
    if (xv === yv) continue;
    const r = open(xv, yv, key);
    if (r !== null) return r;
  }
  return { equal: true };
}

function bothContainers(x: unknown, y: unknown): boolean {
  return x !== null && y !== null && typeof x === 'object' && typeof y === 'object';
}

function describeLeafDifference(x: unknown, y: unknown): string {
  const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  const kx = kind(x);
  const ky = kind(y);
  return kx === ky ? 'values differ' : `${kx} vs ${ky}`;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `$.a[0]["b c"]`; a long path keeps its last segments. */
function formatPath(segments: ReadonlyArray<string | number>): string {
  const parts: string[] = [];
  let length = 0;
  let elided = false;
  for (let i = segments.length - 1; i >= 0; i--) {
    if (length > 200) {
      elided = true;
      break;
    }
    const k = segments[i]!;
    const part = typeof k === 'number' ? `[${k}]` : IDENT.test(k) ? `.${k}` : `[${JSON.stringify(truncate(k, 40))}]`;
    parts.push(part);
    length += part.length;
  }
  parts.reverse();
  return `$${elided ? '…' : ''}${parts.join('')}`;
}

/** A number from a JSON number or a numeric string (see NUMERIC_STRING); null otherwise. */
export function parseNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string') {
    const t = value.trim();
    if (t.length > 400 || !NUMERIC_STRING.test(t)) return null;
    const n = Number(t);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return text.slice(0, max);
  return `${text.slice(0, max - 1)}…`;
}

/** A short quoted excerpt of a value for a reason string. */
export function quote(text: string, max = 80): string {
  return JSON.stringify(truncate(text, max));
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function limitReason(reason: string): string {
  return truncate(reason, MAX_REASON_LENGTH);
}

/** Formats a number for reasons: up to 4 decimals (4 significant digits when tiny or huge), no trailing zeros. */
export function fmt(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const abs = Math.abs(n);
  if (abs < 1e-4 || abs >= 1e15) return n.toPrecision(4);
  return String(Number(n.toFixed(4)));
}
