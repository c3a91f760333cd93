/**
 * `report`: one self-contained HTML file about a run (and, with a baseline,
 * about the change): the summary, the pass rate, the score histogram, the
 * slowest and most expensive items, and with a baseline a paired scatter of
 * scores, the regressions and the compare's statistics. Charts are inline
 * SVG; the page loads nothing (its Content-Security-Policy forbids it) and
 * runs no script. A client of a running evalgate: it reads the run through
 * the export and compare endpoints page by page, in bounded memory (top lists
 * and a reservoir sample for the scatter), whatever the run's size.
 */
import { writeFileSync } from 'node:fs';
import type { EvalRunDto } from '../domain/eval-runs/eval-run.schema.ts';
import { call, openStream } from './cli-gate.ts';

const TOP = 10;
const SCATTER_POINTS = 2_000;
const REGRESSIONS_SHOWN = 50;
const BINS = 10;
const TEXT_CHARS = 160;

export interface ReportRequest {
  url: string;
  apiKey: string;
  runId: string;
  baselineId?: string;
  out: string;
}

interface ItemLine {
  item_id: string;
  status: string;
  score: number | null;
  reason: string | null;
  error: string | null;
  latency_ms: number;
  cost_usd: number | null;
  input: unknown;
  sample: { output: unknown; cost_usd: number | null; latency_ms: number | null } | null;
}

interface CompareRow {
  item_id: string;
  base_score: number | null;
  head_score: number | null;
  delta: number | null;
  change: string;
}

interface ComparePage {
  summary: Record<string, number>;
  statistics: Record<string, unknown> & { verdict: string };
  data: CompareRow[];
  next_cursor: string | null;
}

/** The run's items, one JSON line at a time, from the streamed export. */
async function* exportedItems(r: Pick<ReportRequest, 'url' | 'apiKey'>, runId: string): AsyncGenerator<ItemLine> {
  const body = await openStream(r, `/v1/eval-runs/${runId}/items/export?format=jsonl`);
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of body) {
    rest += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line.trim() !== '') yield JSON.parse(line) as ItemLine;
    }
  }
  if (rest.trim() !== '') yield JSON.parse(rest) as ItemLine;
}

/** The `n` largest by `key`, kept in a small sorted array. */
class Top<T> {
  readonly items: { key: number; value: T }[] = [];
  constructor(private readonly n: number) {}
  add(key: number, value: T): void {
    if (this.items.length === this.n && key <= this.items[this.items.length - 1]!.key) return;
    this.items.push({ key, value });
    this.items.sort((a, b) => b.key - a.key);
    if (this.items.length > this.n) this.items.pop();
  }
}

const esc = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const short = (v: unknown): string => {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? '');
  return s.length > TEXT_CHARS ? `${s.slice(0, TEXT_CHARS)}…` : s;
};
const num = (x: number | null | undefined, digits = 3) => (x === null || x === undefined ? '—' : x.toFixed(digits));
const pct = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)} %`);

function histogramSvg(bins: number[]): string {
  const w = 420;
  const h = 160;
  const max = Math.max(1, ...bins);
  const bw = w / bins.length;
  const bars = bins
    .map((n, i) => {
      const bh = Math.round((n / max) * (h - 30));
      return `<rect class="bar" x="${(i * bw + 2).toFixed(1)}" y="${h - 20 - bh}" width="${(bw - 4).toFixed(1)}" height="${bh}"><title>${(i / bins.length).toFixed(1)}–${((i + 1) / bins.length).toFixed(1)}: ${n}</title></rect>` +
        `<text x="${(i * bw + bw / 2).toFixed(1)}" y="${h - 6}" text-anchor="middle">${(i / bins.length).toFixed(1)}</text>`;
    })
    .join('');
  return `<svg class="chart histogram" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="score histogram">${bars}</svg>`;
}

/** One horizontal bar per criterion: its pass rate (errors excluded), labelled. */
function criteriaSvg(criteria: { name: string; pass_rate: number | null }[]): string {
  const w = 480;
  const rowH = 22;
  const label = 150;
  const h = criteria.length * rowH + 4;
  const bars = criteria
    .map((c, i) => {
      const y = i * rowH + 2;
      const len = Math.round((w - label - 60) * (c.pass_rate ?? 0));
      return `<text x="0" y="${y + 15}" font-size="12">${esc(c.name)}</text><rect class="bar" x="${label}" y="${y + 3}" width="${len}" height="${rowH - 8}"></rect>` +
        `<text x="${label + len + 6}" y="${y + 15}" font-size="12">${c.pass_rate === null ? '—' : `${(c.pass_rate * 100).toFixed(1)} %`}</text>`;
    })
    .join('');
  return `<svg class="chart criteria" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="pass rate per criterion">${bars}</svg>`;
}

function scatterSvg(points: { base: number; head: number }[]): string {
  const s = 260;
  const pad = 24;
  const dots = points
    .map((p) => {
      const jitter = () => (Math.random() - 0.5) * 0.02;
      const x = pad + (p.base + jitter()) * (s - 2 * pad);
      const y = s - pad - (p.head + jitter()) * (s - 2 * pad);
      const cls = p.head > p.base ? 'up' : p.head < p.base ? 'down' : 'same';
      return `<circle class="dot ${cls}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3"/>`;
    })
    .join('');
  return `<svg class="chart scatter" viewBox="0 0 ${s} ${s}" width="${s}" height="${s}" role="img" aria-label="paired scores">` +
    `<line x1="${pad}" y1="${s - pad}" x2="${s - pad}" y2="${pad}" class="diag"/>` +
    `<text x="${s / 2}" y="${s - 4}" text-anchor="middle">baseline score</text>` +
    `<text x="10" y="${s / 2}" text-anchor="middle" transform="rotate(-90 10 ${s / 2})">run score</text>${dots}</svg>`;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f5f5f5}
.kpis{display:flex;gap:1.5em;flex-wrap:wrap}.kpi{background:#f7f7fa;padding:.6em 1em;border-radius:6px}.kpi b{display:block;font-size:1.3em}
.bar{fill:#4a7bd0}.chart text{font-size:10px;fill:#555}.dot{fill-opacity:.6}.up{fill:#2a9d4b}.down{fill:#d0463a}.same{fill:#888}
.diag{stroke:#bbb;stroke-dasharray:4}.verdict{font-weight:bold}.worse{color:#b3261e}.better{color:#1e7d32}`;

export async function writeReport(r: ReportRequest): Promise<{ out: string; items: number; bytes: number }> {
  const run = await call<EvalRunDto>(r, 'GET', `/v1/eval-runs/${r.runId}`);
  const base = r.baselineId ? await call<EvalRunDto>(r, 'GET', `/v1/eval-runs/${r.baselineId}`) : null;

  const bins = new Array<number>(BINS).fill(0);
  const slowest = new Top<ItemLine>(TOP);
  const costliest = new Top<ItemLine>(TOP);
  let items = 0;
  for await (const it of exportedItems(r, run.id)) {
    items++;
    if (it.score !== null) bins[Math.min(BINS - 1, Math.floor(it.score * BINS))]!++;
    slowest.add(it.latency_ms + (it.sample?.latency_ms ?? 0), it);
    const cost = (it.cost_usd ?? 0) + (it.sample?.cost_usd ?? 0);
    if (cost > 0) costliest.add(cost, it);
  }

  let compare: { first: ComparePage; points: { base: number; head: number }[]; regressions: Top<CompareRow> } | null = null;
  if (base) {
    const points: { base: number; head: number }[] = [];
    const regressions = new Top<CompareRow>(REGRESSIONS_SHOWN);
    let seen = 0;
    let cursor: string | null = null;
    let first: ComparePage | null = null;
    do {
      const page: ComparePage = await call<ComparePage>(r, 'GET', `/v1/eval-runs/compare?base=${base.id}&head=${run.id}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      first ??= page;
      for (const row of page.data) {
        if (row.base_score === null || row.head_score === null) continue;
        // reservoir sample: every paired item has the same chance to be drawn, in bounded memory
        seen++;
        if (points.length < SCATTER_POINTS) points.push({ base: row.base_score, head: row.head_score });
        else {
          const j = Math.floor(Math.random() * seen);
          if (j < SCATTER_POINTS) points[j] = { base: row.base_score, head: row.head_score };
        }
        if (row.change === 'regressed' && row.delta !== null) regressions.add(-row.delta, row);
      }
      cursor = page.next_cursor;
    } while (cursor);
    compare = { first: first!, points, regressions };
  }

  const scored = run.passed_count + run.failed_count;
  const passRate = scored + run.error_count > 0 ? run.passed_count / (scored + run.error_count) : null;
  const target = run.target.type === 'dataset_output' ? 'stored outputs' : run.target.type === 'chat_completion' ? `${run.target.provider} / ${run.target.model}` : `endpoint ${run.target.endpoint}`;
  const row = (cells: unknown[]) => `<tr>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  const itemRows = (top: Top<ItemLine>, what: (k: number) => string) =>
    top.items.map(({ key, value: it }) => row([what(key), it.status, num(it.score), short(it.input), short(it.sample?.output ?? ''), short(it.error ?? it.reason ?? '')])).join('');

  let html = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>evalgate report · ${esc(run.name ?? run.id)}</title><style>${CSS}</style></head><body>
<h1>Run ${esc(run.name ?? '')} <small>${esc(run.id)}</small></h1>
<p>${esc(run.status)}${run.error_message ? ` (${esc(run.error_message)})` : ''} · outputs: ${esc(target)} · eval version ${esc(run.eval_version_id)} · created ${esc(run.created_at)}</p>
<div class="kpis">
<div class="kpi">items<b>${run.completed_count} / ${run.item_count}</b></div>
<div class="kpi">pass rate<b id="pass-rate">${pct(passRate)}</b></div>
<div class="kpi">passed / failed / errors<b>${run.passed_count} / ${run.failed_count} / ${run.error_count}</b></div>
<div class="kpi">mean score<b>${num(run.mean_score)}</b></div>
${run.repetitions > 1 ? `<div class="kpi">× ${run.repetitions} repetitions: pass@1 / pass^${run.repetitions} / mean item SD<b id="repetition-stats">${pct(run.pass_at_1)} / ${pct(run.pass_hat_n)} / ${num(run.mean_item_sd)}</b></div>` : ''}
<div class="kpi">cost<b>${run.cost_usd === null ? '—' : `$${run.cost_usd.toFixed(4)}`}</b></div>
<div class="kpi">tokens<b>${run.usage.prompt_tokens + run.usage.completion_tokens}</b></div>
</div>
<h2>Pass rate per criterion</h2>
<table><tr><th>criterion</th><th>passed</th><th>failed</th><th>errors</th><th>pass rate</th><th>mean score</th></tr>
${run.criteria.length === 0
    ? row(['score (the eval version\'s evaluator)', run.passed_count, run.failed_count, run.error_count, pct(passRate), num(run.mean_score)])
    : [...run.criteria.map((c) => row([c.name, c.passed_count, c.failed_count, c.error_count, pct(c.pass_rate), num(c.mean_score)])),
       row([`item (weighted mean of the ${run.criteria.length} criteria)`, run.passed_count, run.failed_count, run.error_count, pct(passRate), num(run.mean_score)])].join('')}</table>
${run.criteria.length === 0 ? '' : criteriaSvg(run.criteria)}
<h2>Score histogram</h2>${histogramSvg(bins)}
<h2>Slowest items</h2><table><tr><th>latency</th><th>status</th><th>score</th><th>input</th><th>output</th><th>reason / error</th></tr>${itemRows(slowest, (k) => `${Math.round(k)} ms`)}</table>
<h2>Most expensive items</h2>${costliest.items.length === 0 ? '<p>No item has a recorded cost.</p>' : `<table><tr><th>cost</th><th>status</th><th>score</th><th>input</th><th>output</th><th>reason / error</th></tr>${itemRows(costliest, (k) => `$${k.toFixed(6)}`)}</table>`}`;

  if (compare && base) {
    const st = compare.first.statistics;
    const sm = compare.first.summary;
    html += `
<h2>Against baseline ${esc(base.name ?? '')} <small>${esc(base.id)}</small></h2>
<p class="verdict ${esc(st.verdict)}" id="verdict">${esc(st.verdict.replaceAll('_', ' '))}</p>
<table><tr><th>paired items</th><th>mean difference</th><th>${esc(`${(1 - Number(st.alpha)) * 100} %`)} CI</th><th>p-value (${esc(st.method)})</th><th>fail→pass / pass→fail</th><th>McNemar p</th><th>improved / regressed / unchanged</th><th>only in baseline / run</th></tr>
${row([st.paired_items, num(st.mean_delta as number | null, 4), `${num(st.ci_low as number | null, 4)} to ${num(st.ci_high as number | null, 4)}`, num(st.p_value as number | null, 4), `${String(st.fail_to_pass)} / ${String(st.pass_to_fail)}`, num(st.mcnemar_p_value as number, 4), `${sm.improved} / ${sm.regressed} / ${sm.unchanged}`, `${sm.only_in_base} / ${sm.only_in_head}`])}</table>
<h2>Paired scores</h2>${scatterSvg(compare.points)}<p>${compare.points.length} of the paired items${compare.points.length === SCATTER_POINTS ? ' (a uniform sample)' : ''}; above the diagonal: better in this run.</p>
<h2>Regressions</h2>${compare.regressions.items.length === 0 ? '<p>None.</p>' : `<table><tr><th>item</th><th>baseline</th><th>run</th><th>difference</th></tr>${compare.regressions.items.map(({ value: c }) => row([c.item_id, num(c.base_score), num(c.head_score), num(c.delta)])).join('')}</table>`}`;
  }
  html += `\n<p><small>evalgate report, ${esc(new Date().toISOString())}</small></p></body></html>\n`;
  writeFileSync(r.out, html);
  return { out: r.out, items, bytes: Buffer.byteLength(html) };
}
