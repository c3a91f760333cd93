/**
 * Linear-time regular expressions through re2js (a pure-JS port of RE2): no
 * backtracking, so patterns like `(a+)+$` cannot blow up. Used by the regex
 * evaluator and, as ajv's RegExp engine, by JSON Schema `pattern` keywords.
 */
import { RE2JS } from 're2js';
import type { Options as AjvOptions } from 'ajv';
import { REGEX_MAX_COST, REGEX_MAX_PROGRAM_SIZE } from './limits.js';
import { errorMessage } from './value-utils.js';
import { WorkBudget } from './work-budget.js';

type RegExpEngine = NonNullable<NonNullable<AjvOptions['code']>['regExp']>;
type RegExpLike = ReturnType<RegExpEngine>;

export interface CompiledRegex {
  readonly source: string;
  readonly flags: string;
  readonly programSize: number;
  /**
   * Unanchored search, like RegExp#test. Charges subject length × program size
   * to `budget` first: throws when that is past REGEX_MAX_COST.
   */
  test(subject: string, budget?: WorkBudget): boolean;
}

function re2Flags(flags: string): number {
  let f = 0;
  for (const c of flags) {
    if (c === 'i') f |= RE2JS.CASE_INSENSITIVE;
    else if (c === 'm') f |= RE2JS.MULTILINE;
    else if (c === 's') f |= RE2JS.DOTALL;
    else if (c !== 'u' && c !== 'g' && c !== 'y') throw new Error(`unsupported regex flag ${JSON.stringify(c)}`);
  }
  return f;
}

/**
 * Compiles `pattern` (RE2 syntax) with flags among i, m, s.
 * Throws an Error whose message starts with 'invalid regular expression' or
 * 'regular expression too complex'.
 */
export function compileRegex(pattern: string, flags = ''): CompiledRegex {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern, re2Flags(flags));
  } catch (e) {
    throw new Error(`invalid regular expression: ${errorMessage(e)}`, { cause: e });
  }
  const programSize = Math.max(1, re.programSize());
  if (programSize > REGEX_MAX_PROGRAM_SIZE) {
    throw new Error(
      `regular expression too complex (RE2 program size ${programSize} > ${REGEX_MAX_PROGRAM_SIZE})`,
    );
  }
  return {
    source: pattern,
    flags,
    programSize,
    test(subject: string, budget: WorkBudget = schemaRegexBudget ?? new WorkBudget()): boolean {
      // RE2 is linear: length × program size bounds the NFA's steps, so it is charged before the search.
      budget.charge(
        'regex_cost',
        subject.length * programSize,
        REGEX_MAX_COST,
        () => `input too large for regex (${subject.length} chars × program size ${programSize} > ${REGEX_MAX_COST})`,
      );
      return re.test(subject);
    },
  };
}

/** The budget of the JSON schema validation in progress: ajv calls patterns without one. */
let schemaRegexBudget: WorkBudget | undefined;

/** Runs `fn` (a synchronous schema validation) with its `pattern` searches charged to `budget`. */
export function withSchemaRegexBudget<T>(budget: WorkBudget, fn: () => T): T {
  const previous = schemaRegexBudget;
  schemaRegexBudget = budget;
  try {
    return fn();
  } finally {
    schemaRegexBudget = previous;
  }
}

/**
 * ajv `code.regExp` engine. JSON Schema patterns use ECMA-262 syntax, so they
 * are translated to RE2 syntax first (e.g. `\u00e9`, `(?<name>…)`). The
 * returned object's toString is unique per pattern because ajv uses it as a
 * cache key.
 */
export const ajvRegExpEngine: RegExpEngine = Object.assign(
  (pattern: string, u: string): RegExpLike => {
    const compiled = compileRegex(RE2JS.translateRegExp(pattern), u.replace(/[ugy]/g, ''));
    return {
      test: (s: string) => compiled.test(s),
      toString: () => `/${pattern}/${u}`,
    } as RegExpLike;
  },
  { code: 're2js' },
);
