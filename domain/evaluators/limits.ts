/**
 * Bounds that keep every evaluation of one item well under about a second on
 * the project's 2-core machines. Inputs beyond a bound make the evaluator
 * throw a per-item Error that names the bound, instead of hanging the worker.
 */

/** Longest reason string returned. */
export const MAX_REASON_LENGTH = 500;

/**
 * levenshtein: largest (output length × target length) in UTF-16 code units.
 * fastest-levenshtein is bit-parallel (Myers), about 0.35 ns per cell here,
 * so 5e8 cells (e.g. two 22,000-character texts) take about 0.2 s.
 * Identical strings and an empty side are answered without this bound.
 */
export const LEVENSHTEIN_MAX_CELLS = 500_000_000;

/** rouge_l: largest (output tokens × target tokens) for the O(n·m) LCS table, about 0.15 s at the bound. */
export const ROUGE_L_MAX_CELLS = 25_000_000;

/**
 * regex: largest (subject length × RE2 program size). When RE2's DFA gives up,
 * the NFA fallback costs up to about 10 ns per (character × instruction), so
 * the bound keeps the worst case near 1 s; a simple pattern (program size ≤ 10)
 * still runs on a 10 MB output.
 */
export const REGEX_MAX_COST = 100_000_000;

/** regex: largest RE2 program (instructions) accepted at config time. */
export const REGEX_MAX_PROGRAM_SIZE = 10_000;

/**
 * contains_any / contains_all: largest (output length × number of values). Each value
 * is a separate substring search, up to about 0.5 ns per character in V8's worst case,
 * so the bound keeps a check near 0.5 s (e.g. 10 MB of output against 100 values).
 */
export const CONTAINS_MAX_SCAN = 1_000_000_000;

/** Most value pairs a deep-equal may visit before giving up. */
export const DEEP_EQUAL_MAX_NODES = 10_000_000;

/**
 * token_f1 / rouge_l: longest text (UTF-16 code units) tokenised per side.
 * Tokenising costs about 20 ns per character, so two 10 MB texts stay within budget.
 */
export const MAX_TOKENIZE_CHARS = 16 * 1024 * 1024;

/** json_schema: the first this-many ajv errors are listed in the reason. */
export const MAX_SCHEMA_ERRORS_IN_REASON = 3;
