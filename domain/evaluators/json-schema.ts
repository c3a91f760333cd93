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
import { LRUCache } from 'lru-cache';
import { ajvRegExpEngine, withSchemaRegexBudget } from './regex-engine.js';
import { canonicalJson } from './value-utils.js';
import { WorkBudget } from './work-budget.js';

/** Most work units one validation may spend (about 0.1 µs each). */
export const SCHEMA_WORK_BUDGET = 5_000_000;

/**
 * Largest compile cost accepted (see `schemaCompileCost`): ajv generates and
 * compiles code per subschema (about 0.4 ms each here) and RE2 compiles each
 * pattern (up to about 1.5 ms), so the bound keeps a compile near 2 s, on a
 * worker thread (./evaluator-pool.ts), never on the API's event loop.
 */
export const SCHEMA_COMPILE_MAX_COST = 5_000;
/** A `pattern` / `patternProperties` entry costs this many subschemas. */
const PATTERN_COMPILE_COST = 4;

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
  return instrument(schema).schema;
}

/**
 * What compiling `schema` costs, in subschemas: every schema object counts 1,
 * every regular expression PATTERN_COMPILE_COST. Counted by walking the schema
 * (bounded by the config's size), before ajv sees it.
 */
export function schemaCompileCost(schema: Record<string, unknown>): number {
  return instrument(schema).cost;
}

function instrument(schema: Record<string, unknown>): { schema: Record<string, unknown>; cost: number } {
  let cost = 0;
  const root: Record<string, unknown> = {};
  type Job = { src: unknown; set: (v: unknown) => void; mode: 'schema' | 'map'; patterns?: boolean };
  const jobs: Job[] = [{ src: schema, set: () => undefined, mode: 'schema' }];
  let first = true;
  while (jobs.length > 0) {
    const { src, set, mode, patterns: isPatternMap = false } = jobs.pop()!;
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
    if (mode === 'schema') cost += 1;
    else if (mode === 'map' && isPatternMap) cost += PATTERN_COMPILE_COST * Object.keys(src).length;
    for (const [k, v] of Object.entries(src as Record<string, unknown>)) {
      if (mode === 'schema' && k === 'pattern' && typeof v === 'string') cost += PATTERN_COMPILE_COST;
      out[k] = undefined; // keeps the original key order; filled in below or by a job
      if (mode === 'schema' && DATA_KEYWORDS.has(k)) {
        if (k === COST_KEYWORD) {
          delete out[k];
        } else {
          out[k] = v;
          ownCost += nodeCount(v);
        }
      } else {
        const isMap = mode === 'schema' && MAP_KEYWORDS.has(k);
        jobs.push({ src: v, set: (x) => (out[k] = x), mode: isMap ? 'map' : 'schema', patterns: isMap && k === 'patternProperties' });
      }
    }
    if (mode === 'schema') out[COST_KEYWORD] = ownCost;
  }
  return { schema: root, cost };
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
  /**
   * Charges its work (`schema_units`, and `regex_cost` for patterns) to `budget`.
   * Throws an Error when SCHEMA_WORK_BUDGET is exceeded or the data is too deeply
   * nested for a recursive schema.
   */
  validate(data: unknown, budget?: WorkBudget): SchemaCheck;
}

/**
 * Compiled schemas by their JSON text, so validating a config and compiling its
 * evaluator compile once. Compiled schemas hold no per-tenant state between
 * calls, so identical schemas may share one. Bounded, and read with `peek` so
 * that a hit does not refresh an entry: the oldest compiled goes first.
 */
const MAX_CACHED_SCHEMAS = 200;
const compiled = new LRUCache<string, CompiledSchema>({ max: MAX_CACHED_SCHEMAS });

/**
 * Compiles a JSON schema (draft-07 by default; 2019-09 / 2020-12 when `$schema`
 * names them). Cached by JSON text. Throws when the schema does not compile.
 */
export function compileJsonSchema(schema: Record<string, unknown>): CompiledSchema {
  const cacheKey = JSON.stringify(schema);
  const cached = compiled.peek(cacheKey);
  if (cached !== undefined) return cached;
  const { schema: instrumented, cost } = instrument(schema);
  if (cost > SCHEMA_COMPILE_MAX_COST) {
    throw new Error(`schema too complex to compile (cost ${cost} > ${SCHEMA_COMPILE_MAX_COST}: 1 per subschema, ${PATTERN_COMPILE_COST} per pattern)`);
  }

  const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
  const ajv = dialect.includes('2020-12')
    ? new Ajv2020(AJV_OPTIONS)
    : dialect.includes('2019-09')
      ? new Ajv2019(AJV_OPTIONS)
      : new Ajv(AJV_OPTIONS);

  let budget = new WorkBudget();
  const exceeded = (): string => `json_schema validation exceeded its work budget (${SCHEMA_WORK_BUDGET} units)`;
  const spend = (units: number): void => budget.charge('schema_units', units, SCHEMA_WORK_BUDGET, exceeded);

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
    validate = ajv.compile(instrumented);
  } catch (e) {
    if (e instanceof RangeError) throw new Error('schema too deeply nested', { cause: e });
    throw e;
  }

  const result: CompiledSchema = {
    validate(data: unknown, b: WorkBudget = new WorkBudget()): SchemaCheck {
      budget = b;
      let valid: boolean;
      try {
        valid = withSchemaRegexBudget(b, () => validate(data) as boolean);
      } catch (e) {
        if (e instanceof RangeError) {
          throw new Error('output too deeply nested to validate against this schema', { cause: e });
        }
        throw e;
      }
      return valid ? { valid: true } : { valid: false, errors: validate.errors ?? [] };
    },
  };
  compiled.set(cacheKey, result);
  return result;
}
