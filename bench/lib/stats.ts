/** Small statistics and formatting helpers for the bench. */

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

export function max(xs: readonly number[]): number {
  return xs.reduce((a, b) => (b > a ? b : a), Number.NEGATIVE_INFINITY);
}

/** Median of one field over rounds. */
export function medianOf<T>(rounds: readonly T[], pick: (r: T) => number): number {
  return median(rounds.map(pick));
}

/** `1234.5` → `1,235`; small numbers keep `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function pct(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)} %` : '—';
}

export function ms(n: number, digits = 0): string {
  return Number.isFinite(n) ? `${fmt(n, digits)} ms` : '—';
}

export function mb(n: number): string {
  return Number.isFinite(n) ? `${fmt(n, 0)} MB` : '—';
}

export function seconds(msValue: number): string {
  return Number.isFinite(msValue) ? `${(msValue / 1000).toFixed(1)} s` : '—';
}

/** The spread of rounds, for the reader to judge noise: `min–max`. */
export function spread(xs: readonly number[], f: (n: number) => string = (n) => fmt(n)): string {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length < 2) return '';
  return `${f(Math.min(...v))}–${f(Math.max(...v))}`;
}

/** A markdown table; also readable as plain text on a terminal. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}
