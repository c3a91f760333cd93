/**
 * JSON Schema compilation for the json_schema evaluator, hardened for schemas
 * written by tenants. ajv treats schemas as trusted code; the known ways a
 * schema can make validation hang are closed here:
 *
 * - `pattern` / `patternProperties` run on RE2 (linear time, size-bounded).
 * - `uniqueItems` is replaced by an O(n) check (canonical JSON in a Set)
 *   instead of ajv's pairwise O(n²) deep comparison.
 * - A work budget: every schema object gets a counting keyword, so each time a
 *   subschema is applied its cost (its own size plus the size of the data it is
 *   applied to) is added up; past SCHEMA_WORK_BUDGET validation stops with an
 *   Error. This bounds "billion laughs" schemas (`allOf` of `$ref`s that
 *   double at every level) and large data visited many times.
 * - A fresh ajv instance per schema, so `$id`s of different evals never meet,
 *   and no remote `$ref` loading.
 */
import { Ajv, type ErrorObject, type Options as AjvOptions, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ajvRegExpEngine } from './regex-engine.js';
import { canonicalJson } from './value-utils.js';

/** Most work units one validation may spend (about 0.1 µs each). */
export const SCHEMA_WORK_BUDGET = 5_000_000;

/** The counting keyword added to every schema object. */
const COST_KEYWORD = 'x-evalgate-cost';

/** Keywords whose values are data, not schemas: never instrumented. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example', '$vocabulary', COST_KEYWORD]);
/** Keywords whose values are maps of name → schema: the map itself is not a schema. */
const MAP_KEYWORDS = new Set(['properties', 'patternProperties', 'definitions', '$defs', 'dependentSchemas', 'dependencies']);

const AJV_OPTIONS: AjvOptions = {
  // Accept schemas from the wild: unknown keywords are annotations, not errors.
  strict: false,
  allErrors: true,
  logger: false,
  // `format` is an annotation by default since draft 2019-09; no format vocabulary is loaded.
  validateFormats: false,
  code: { regExp: ajvRegExpEngine },
};

/** Number of JSON nodes in a value (iterative). */
function nodeCount(value: unknown): number {
  let n = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    n += 1;
    if (Array.isArray(v)) for (const e of v) stack.push(e);
    else if (v !== null && typeof v === 'object') for (const e of Object.values(v)) stack.push(e);
  }
  return n;
}

/**
 * A deep copy of `schema` in which every schema object carries
 * `{ "x-evalgate-cost": <its own size> }`. Objects under unknown keywords are
 * treated as schemas too, since a `$ref` may point at them; data keywords
 * (const, enum, default, examples) are copied untouched.
 */
export function instrumentSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  type Job = { src: unknown; set: (v: unknown) => void; mode: 'schema' | 'map' };
  const jobs: Job[] = [{ src: schema, set: () => undefined, mode: 'schema' }];
  let first = true;
  while (jobs.length > 0) {
    const { src, set, mode } = jobs.pop()!;
    if (Array.isArray(src)) {
      const out: unknown[] = new Array<unknown>(src.length);
      set(out);
      src.forEach((e, i) => jobs.push({ src: e, set: (v) => (out[i] = v), mode: 'schema' }));
      continue;
    }
    if (src === null || typeof src !== 'object') {
      set(src);
      continue;
    }
    const out: Record<string, unknown> = first ? root : {};
    first = false;
    set(out);
    let ownCost = 1;
    for (const [k, v] of Object.entries(src as Record<string, unknown>)) {
      out[k] = undefined; // keeps the original key order; filled in below or by a job
      if (mode === 'schema' && DATA_KEYWORDS.has(k)) {
        if (k === COST_KEYWORD) {
          delete out[k];
        } else {
          out[k] = v;
          ownCost += nodeCount(v);
        }
      } else {
        jobs.push({ src: v, set: (x) => (out[k] = x), mode: mode === 'schema' && MAP_KEYWORDS.has(k) ? 'map' : 'schema' });
      }
    }
    if (mode === 'schema') out[COST_KEYWORD] = ownCost;
  }
  return root;
}

/** Cost of applying a subschema to `data`, beyond the subschema's own size. */
function dataCost(data: unknown): number {
  if (Array.isArray(data)) return data.length;
  if (typeof data === 'string') return data.length >> 6;
  if (data !== null && typeof data === 'object') {
    let n = 0;
    for (const k in data) if (Object.hasOwn(data, k)) n += 1;
    return n;
  }
  return 0;
}

export type SchemaCheck = { valid: true } | { valid: false; errors: ErrorObject[] };

export interface CompiledSchema {
  /** Throws an Error when the work budget is exceeded or the data is too deeply nested for a recursive schema. */
  validate(data: unknown): SchemaCheck;
}

/**
 * Compiled schemas by their JSON text, so validating a config and compiling its
 * evaluator compile once. Compiled schemas hold no per-tenant state between
 * calls, so identical schemas may share one. Bounded; oldest entries go first.
 */
const compiled = new Map<string, CompiledSchema>();
const MAX_CACHED_SCHEMAS = 200;

/**
 * Compiles a JSON schema (draft-07 by default; 2019-09 / 2020-12 when `$schema`
 * names them). Cached by JSON text. Throws when the schema does not compile.
 */
export function compileJsonSchema(schema: Record<string, unknown>): CompiledSchema {
  const cacheKey = JSON.stringify(schema);
  const cached = compiled.get(cacheKey);
  if (cached !== undefined) return cached;

  const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
  const ajv = dialect.includes('2020-12')
    ? new Ajv2020(AJV_OPTIONS)
    : dialect.includes('2019-09')
      ? new Ajv2019(AJV_OPTIONS)
      : new Ajv(AJV_OPTIONS);

  let used = 0;
  const spend = (units: number): void => {
    used += units;
    if (used > SCHEMA_WORK_BUDGET) {
      throw new Error(`json_schema validation exceeded its work budget (${SCHEMA_WORK_BUDGET} units)`);
    }
  };

  ajv.addKeyword({
    keyword: COST_KEYWORD,
    schemaType: 'number',
    errors: false,
    validate: (ownCost: number, data: unknown) => {
      spend(ownCost + dataCost(data));
      return true;
    },
  });

  // O(n) uniqueItems (ajv's own compares every pair of non-scalar items).
  ajv.removeKeyword('uniqueItems');
  const uniqueItems = (unique: boolean, data: unknown[]): boolean => {
    if (!unique) return true;
    const seen = new Map<string, number>();
    for (let i = 0; i < data.length; i++) {
      const item = data[i];
      const key = canonicalJson(item);
      // Canonicalising and hashing a container costs about 2.5 µs; a scalar far less.
      spend(item !== null && typeof item === 'object' ? 10 + (key.length >> 2) : 1 + (key.length >> 4));
      const j = seen.get(key);
      if (j !== undefined) {
        uniqueItems.errors = [
          {
            keyword: 'uniqueItems',
            message: `must NOT have duplicate items (items ## ${j} and ${i} are identical)`,
            params: { i, j },
          },
        ];
        return false;
      }
      seen.set(key, i);
    }
    return true;
  };
  uniqueItems.errors = undefined as Array<Partial<ErrorObject>> | undefined;
  ajv.addKeyword({ keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', errors: true, validate: uniqueItems });

  let validate: ValidateFunction;
  try {
    validate = ajv.compile(instrumentSchema(schema));
  } catch (e) {
    if (e instanceof RangeError) throw new Error('schema too deeply nested', { cause: e });
    throw e;
  }

  const result: CompiledSchema = {
    validate(data: unknown): SchemaCheck {
      used = 0;
      let valid: boolean;
      try {
        valid = validate(data) as boolean;
      } catch (e) {
        if (e instanceof RangeError) {
          throw new Error('output too deeply nested to validate against this schema', { cause: e });
        }
        throw e;
      }
      return valid ? { valid: true } : { valid: false, errors: validate.errors ?? [] };
    },
  };
  if (compiled.size >= MAX_CACHED_SCHEMAS) compiled.delete(compiled.keys().next().value!);
  compiled.set(cacheKey, result);
  return result;
}
