/**
 * Graded text similarity: levenshtein, token_f1 (SQuAD-style) and rouge_l.
 */
import { distance } from 'fastest-levenshtein';
import type { EvaluatorConfig } from './evaluator.schema.js';
import { LEVENSHTEIN_MAX_CELLS, MAX_TOKENIZE_CHARS, ROUGE_L_MAX_CELLS } from './limits.js';
import { resolveTarget } from './target.js';
import type { ScoreFn } from './types.js';
import { fmt, toText } from './value-utils.js';
import { WorkBudget } from './work-budget.js';

type ConfigOf<T extends EvaluatorConfig['type']> = Extract<EvaluatorConfig, { type: T }>;

/**
 * Score = 1 − distance / max(len output, len target) in UTF-16 code units,
 * 1 when both are empty. Refuses pairs with more than LEVENSHTEIN_MAX_CELLS
 * cells (unless the texts are identical or one is empty).
 */
export function levenshtein(config: ConfigOf<'levenshtein'>): ScoreFn {
  return (item, budget) => {
    const { value, label } = resolveTarget(config, item);
    let a = toText(item.output);
    let b = toText(value);
    if (config.trim) {
      a = a.trim();
      b = b.trim();
    }
    if (!config.case_sensitive) {
      a = a.toLowerCase();
      b = b.toLowerCase();
    }
    const longest = Math.max(a.length, b.length);
    if (longest === 0) return { score: 1, reason: `output and ${label} are both empty` };
    let d: number;
    if (a === b) d = 0;
    else if (a.length === 0 || b.length === 0) d = longest;
    else {
      const [la, lb] = [a.length, b.length];
      budget.charge(
        'levenshtein_cells',
        la * lb,
        LEVENSHTEIN_MAX_CELLS,
        () => `inputs too large for levenshtein (${la} chars × ${lb} chars > ${LEVENSHTEIN_MAX_CELLS})`,
      );
      d = distance(a, b);
    }
    const score = 1 - d / longest;
    return { score, reason: `edit distance ${d} over ${longest} chars (similarity ${fmt(score)})` };
  };
}

/**
 * Tokens are runs of letters, digits and combining marks (\p{L}, \p{N}, \p{M}),
 * lower-cased; punctuation and whitespace separate them. Each token is mapped to
 * an integer id through `dict`, shared by both sides of a comparison.
 */
const WORD_CHAR = /^[\p{L}\p{N}\p{M}]$/u;
/** Per BMP code unit: 0 = not classified yet, 1 = word character, 2 = separator. */
const bmpClass = new Uint8Array(65536);
for (let c = 0; c < 128; c++) bmpClass[c] = /[a-zA-Z0-9]/.test(String.fromCharCode(c)) ? 1 : 2;

function isWordCodePoint(cp: number): boolean {
  if (cp < 65536) {
    let k = bmpClass[cp]!;
    if (k === 0) {
      k = WORD_CHAR.test(String.fromCharCode(cp)) ? 1 : 2;
      bmpClass[cp] = k;
    }
    return k === 1;
  }
  return WORD_CHAR.test(String.fromCodePoint(cp));
}

/**
 * Token ids of `text`, charged to `budget` as `tokenize_chars` (both sides of a
 * comparison share a bound of twice MAX_TOKENIZE_CHARS); one side longer than
 * MAX_TOKENIZE_CHARS is refused before any work.
 */
export function tokenIds(
  text: string,
  dict: Map<string, number>,
  side: string,
  evaluator: string,
  budget: WorkBudget = new WorkBudget(),
): Int32Array {
  const refusal = (): string => `${side} too large for ${evaluator} (${text.length} chars > ${MAX_TOKENIZE_CHARS})`;
  if (text.length > MAX_TOKENIZE_CHARS) throw new Error(refusal());
  budget.charge('tokenize_chars', text.length, 2 * MAX_TOKENIZE_CHARS, refusal);
  const s = text.toLowerCase();
  const n = s.length;
  const ids = new Int32Array((n >> 1) + 1);
  let count = 0;
  let start = -1;
  const emit = (end: number): void => {
    const t = s.slice(start, end);
    let id = dict.get(t);
    if (id === undefined) {
      id = dict.size;
      dict.set(t, id);
    }
    ids[count++] = id;
    start = -1;
  };
  for (let i = 0; i < n; ) {
    const cp = s.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    if (isWordCodePoint(cp)) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      emit(i);
    }
    i += width;
  }
  if (start >= 0) emit(n);
  return ids.subarray(0, count);
}

/** The tokens of a text as strings (for tests and diagnostics). */
export function tokenize(text: string): string[] {
  const dict = new Map<string, number>();
  const ids = tokenIds(text, dict, 'text', 'tokenize');
  const names: string[] = [];
  for (const [t, id] of dict) names[id] = t;
  return Array.from(ids, (id) => names[id]!);
}

/**
 * SQuAD-style F1 over token multisets: common = Σ min(count in output, count in target),
 * precision = common / output tokens, recall = common / target tokens,
 * F1 = 2PR / (P + R). Both token lists empty → 1; only one empty → 0.
 * Unlike the SQuAD script, English articles are kept (the tokeniser is language-neutral).
 */
export function tokenF1(config: ConfigOf<'token_f1'>): ScoreFn {
  return (item, budget) => {
    const { value, label } = resolveTarget(config, item);
    const dict = new Map<string, number>();
    const pred = tokenIds(toText(item.output), dict, 'output', 'token_f1', budget);
    const gold = tokenIds(toText(value), dict, label, 'token_f1', budget);
    if (pred.length === 0 && gold.length === 0) return { score: 1, reason: `output and ${label} have no tokens` };
    if (pred.length === 0 || gold.length === 0) {
      return { score: 0, reason: `${pred.length === 0 ? 'output' : label} has no tokens` };
    }
    const counts = new Int32Array(dict.size);
    for (const id of gold) counts[id]! += 1;
    let common = 0;
    for (const id of pred) {
      if (counts[id]! > 0) {
        common += 1;
        counts[id]! -= 1;
      }
    }
    if (common === 0) return { score: 0, reason: `no tokens in common (output ${pred.length}, ${label} ${gold.length})` };
    const precision = common / pred.length;
    const recall = common / gold.length;
    const f1 = (2 * precision * recall) / (precision + recall);
    return {
      score: f1,
      reason: `token F1 ${fmt(f1)} (precision ${fmt(precision)}, recall ${fmt(recall)}, ${common} common tokens)`,
    };
  };
}

/** Length of the longest common subsequence; a and b are token ids. O(n·m) time, O(min(n,m)) memory. */
function lcsLength(a: Int32Array, b: Int32Array): number {
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  let prev = new Int32Array(short.length + 1);
  let cur = new Int32Array(short.length + 1);
  for (let i = 0; i < long.length; i++) {
    const x = long[i]!;
    for (let j = 0; j < short.length; j++) {
      if (x === short[j]) cur[j + 1] = prev[j]! + 1;
      else {
        const up = prev[j + 1]!;
        const left = cur[j]!;
        cur[j + 1] = up > left ? up : left;
      }
    }
    const t = prev;
    prev = cur;
    cur = t;
  }
  return prev[short.length]!;
}

/**
 * ROUGE-L F-measure (β = 1) over token_f1's tokens: P = LCS / output tokens,
 * R = LCS / target tokens, F = 2PR / (P + R). Both empty → 1; one empty → 0.
 * A common prefix and suffix are counted directly; the LCS table for the rest
 * must not exceed ROUGE_L_MAX_CELLS cells.
 */
export function rougeL(config: ConfigOf<'rouge_l'>): ScoreFn {
  return (item, budget) => {
    const { value, label } = resolveTarget(config, item);
    const dict = new Map<string, number>();
    const cand = tokenIds(toText(item.output), dict, 'output', 'rouge_l', budget);
    const ref = tokenIds(toText(value), dict, label, 'rouge_l', budget);
    if (cand.length === 0 && ref.length === 0) return { score: 1, reason: `output and ${label} have no tokens` };
    if (cand.length === 0 || ref.length === 0) {
      return { score: 0, reason: `${cand.length === 0 ? 'output' : label} has no tokens` };
    }
    let start = 0;
    while (start < cand.length && start < ref.length && cand[start] === ref[start]) start += 1;
    let endC = cand.length;
    let endR = ref.length;
    while (endC > start && endR > start && cand[endC - 1] === ref[endR - 1]) {
      endC -= 1;
      endR -= 1;
    }
    const n = endC - start;
    const m = endR - start;
    budget.charge('rouge_l_cells', n * m, ROUGE_L_MAX_CELLS, () => `inputs too large for rouge_l (${n} tokens × ${m} tokens > ${ROUGE_L_MAX_CELLS})`);
    // The common prefix and suffix belong to an LCS; the middle parts are compared cell by cell.
    let lcs = cand.length - n;
    if (n > 0 && m > 0) lcs += lcsLength(cand.subarray(start, endC), ref.subarray(start, endR));
    if (lcs === 0) return { score: 0, reason: `no common subsequence (output ${cand.length} tokens, ${label} ${ref.length})` };
    const precision = lcs / cand.length;
    const recall = lcs / ref.length;
    const f = (2 * precision * recall) / (precision + recall);
    return {
      score: f,
      reason: `ROUGE-L F ${fmt(f)} (LCS ${lcs} tokens, precision ${fmt(precision)}, recall ${fmt(recall)})`,
    };
  };
}
