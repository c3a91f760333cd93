/** `{{input}}`, `{{output}}`, `{{expected_output}}`, `{{metadata.a.b}}`: strings as they are, other JSON as JSON. */
import type { EvalItem } from '../types.ts';

const PLACEHOLDER = /\{\{\s*(input|output|expected_output|metadata(?:\.[A-Za-z0-9_-]+)*)\s*\}\}/g;

function render(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function renderTemplate(template: string, item: EvalItem): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    if (name === 'input' || name === 'output' || name === 'expected_output') return render(item[name]);
    let cur: unknown = item.metadata;
    for (const part of name.split('.').slice(1)) {
      cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
    }
    return render(cur);
  });
}
