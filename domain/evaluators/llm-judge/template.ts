/**
 * `{{input}}`, `{{output}}`, `{{expected_output}}`, `{{metadata.a.b}}`, and a path into any of them
 * (`{{input.question}}`, `{{input.messages.0.content}}`): strings as they are, other JSON as JSON,
 * a path that leads nowhere as the empty string.
 *
 * A template that repeats `{{output}}` thousands of times over a large output
 * would render gigabytes, so the messages of a prompt are measured first: each
 * placeholder's value is rendered once, and the total is added up in UTF-8
 * bytes from the literal parts and the values' sizes. Only a prompt within the
 * cap is built; a larger one throws PromptTooLarge and nothing is concatenated.
 */
import type { EvalItem } from '../types.ts';

export const PLACEHOLDER = /\{\{\s*((?:input|output|expected_output|metadata)(?:\.[A-Za-z0-9_-]+)*)\s*\}\}/g;

/** The rendered prompt would be larger than the cap: the item's error, not the run's. */
export class PromptTooLarge extends Error {
  override name = 'PromptTooLarge';
  constructor(readonly bytes: number, readonly maxBytes: number) {
    super(`prompt renders to ${bytes} bytes, more than MAX_PROMPT_BYTES (${maxBytes})`);
  }
}

function render(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? '');
}

/** The JSON value a placeholder name stands for (`input.a.0.b`: a path through objects and arrays); undefined when it leads nowhere. */
export function valueAt(name: string, item: EvalItem): unknown {
  const parts = name.split('.');
  let cur: unknown = item[parts[0] as keyof EvalItem];
  for (const part of parts.slice(1)) {
    cur = cur !== null && typeof cur === 'object' && Object.hasOwn(cur, part) ? (cur as Record<string, unknown>)[part] : undefined;
  }
  return cur;
}

function valueOf(name: string, item: EvalItem): string {
  return render(valueAt(name, item));
}

/** A template cut at its placeholders: literal, name, literal, name, …, literal. */
interface Parsed {
  literals: string[];
  names: string[];
}

function parse(template: string): Parsed {
  const literals: string[] = [];
  const names: string[] = [];
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    literals.push(template.slice(last, m.index));
    names.push(m[1]!);
    last = m.index + m[0].length;
  }
  literals.push(template.slice(last));
  return { literals, names };
}

/**
 * Renders several templates (one prompt's messages) over one item. Throws
 * PromptTooLarge when they would total more than `maxBytes` UTF-8 bytes, before
 * building any of them; the work done until then is one rendering per distinct
 * placeholder and one pass over the templates.
 */
export function renderPrompt(templates: readonly string[], item: EvalItem, maxBytes = Number.POSITIVE_INFINITY): string[] {
  const parsed = templates.map(parse);
  const values = new Map<string, { text: string; bytes: number }>();
  let bytes = 0;
  for (const p of parsed) {
    for (const l of p.literals) bytes += Buffer.byteLength(l, 'utf8');
    for (const name of p.names) {
      let v = values.get(name);
      if (v === undefined) {
        const text = valueOf(name, item);
        v = { text, bytes: Buffer.byteLength(text, 'utf8') };
        values.set(name, v);
      }
      bytes += v.bytes;
    }
  }
  if (bytes > maxBytes) throw new PromptTooLarge(bytes, maxBytes);
  return parsed.map((p) => {
    let out = p.literals[0]!;
    for (let i = 0; i < p.names.length; i++) out += values.get(p.names[i]!)!.text + p.literals[i + 1]!;
    return out;
  });
}

export function renderTemplate(template: string, item: EvalItem, maxBytes?: number): string {
  return renderPrompt([template], item, maxBytes)[0]!;
}
