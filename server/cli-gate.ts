/**
 * `gate`: the CI step. Schedules a run (or takes one), follows it to its end
 * with the progress bar, asks the API for the gate's verdict, and writes a
 * JUnit report (one testcase per item, failures with their reasons) and a
 * Markdown summary for a pull-request comment. A client of a running
 * evalgate: no database, no Redis. Exit codes: 0 passed, 1 failed, 2 could
 * not run (bad arguments, the API refusing or unreachable).
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import type { EvalRunDto } from '../domain/eval-runs/eval-run.schema.ts';
import type { GateBaseline, GatePolicy, GateVerdict } from '../domain/eval-runs/gate.schema.ts';
import { EvalgateHttpError } from '../client/run-events.ts';
import { watchRunInTerminal, type ProgressOutput } from './cli-watch.ts';

const REQUEST_TIMEOUT_MS = 30_000;
const PAGE_LIMIT = 1_000;
const MAX_REASON_CHARS = 2_000;

export interface GateRequest {
  url: string;
  apiKey: string;
  run:
    | { id: string }
    | {
        datasetId: string;
        evalVersionId: string;
        name?: string;
        metadata?: Record<string, unknown>;
        idempotencyKey?: string;
        /** what generates the outputs (the schedule body's `target`), and its budget */
        target?: unknown;
        maxCostUsd?: number;
      };
  policy: Partial<GatePolicy>;
  baseline?: GateBaseline;
  junitPath?: string;
  markdownPath?: string;
}

export class GateCouldNotRun extends Error {}

/** The API's refusal as the CLI reports it: method, path, status and the `{ error }` message (else the body's start). */
function refusal(method: string, path: string, status: number, text: string): GateCouldNotRun {
  let message: unknown;
  try {
    message = (JSON.parse(text) as { error?: unknown } | undefined)?.error;
  } catch {
    message = undefined;
  }
  return new GateCouldNotRun(`${method} ${path}: ${status} ${typeof message === 'string' ? message : text.slice(0, 200)}`);
}

/** One JSON request to the API with a deadline; a refusal or no answer is GateCouldNotRun. */
export async function call<T>(g: Pick<GateRequest, 'url' | 'apiKey'>, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, g.url), {
      method,
      headers: { authorization: `Bearer ${g.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new GateCouldNotRun(`${method} ${path}: ${(err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw refusal(method, path, res.status, text);
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined as T;
  }
}

/**
 * A streamed GET: the answer's start within the deadline, its body as it
 * comes (as long as it keeps coming); a refusal or no answer is GateCouldNotRun.
 */
export async function openStream(g: Pick<GateRequest, 'url' | 'apiKey'>, path: string): Promise<AsyncIterable<Uint8Array>> {
  const abort = new AbortController();
  const startDeadline = setTimeout(() => abort.abort(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
  let res: Response;
  try {
    res = await fetch(new URL(path, g.url), { headers: { authorization: `Bearer ${g.apiKey}` }, signal: abort.signal });
  } catch (err) {
    throw new GateCouldNotRun(`GET ${path}: ${(err as Error).message}`);
  } finally {
    clearTimeout(startDeadline);
  }
  if (!res.ok || !res.body) throw refusal('GET', path, res.status, await res.text());
  return res.body as unknown as AsyncIterable<Uint8Array>;
}

/** Runs the gate; returns the verdict and the exit code (0 passed, 1 failed). Throws GateCouldNotRun. */
export async function runGate(g: GateRequest, progress: ProgressOutput = process.stderr): Promise<{ verdict: GateVerdict; code: 0 | 1 }> {
  let runId: string;
  if ('id' in g.run) {
    runId = g.run.id;
  } else {
    const r = g.run;
    const run = await call<EvalRunDto>(g, 'POST', `/v1/datasets/${r.datasetId}/runs`, {
      eval_version_id: r.evalVersionId,
      ...(r.name !== undefined && { name: r.name }),
      ...(r.metadata !== undefined && { metadata: r.metadata }),
      ...(r.target !== undefined && { target: r.target }),
      ...(r.maxCostUsd !== undefined && { max_cost_usd: r.maxCostUsd }),
    }, r.idempotencyKey ? { 'idempotency-key': r.idempotencyKey } : {});
    runId = run.id;
    progress.write(`scheduled run ${runId}\n`);
  }
  let run: EvalRunDto;
  try {
    run = await watchRunInTerminal({ url: g.url, apiKey: g.apiKey, runId }, progress);
  } catch (err) {
    const status = err instanceof EvalgateHttpError ? `${err.status} ` : '';
    throw new GateCouldNotRun(`watching run ${runId}: ${status}${(err as Error).message}`);
  }
  const verdict = await call<GateVerdict>(g, 'POST', `/v1/eval-runs/${runId}/gate`, { policy: g.policy, ...(g.baseline && { baseline: g.baseline }) });
  if (g.junitPath) await writeJUnit(g, run, verdict, g.junitPath);
  if (g.markdownPath) writeFileSync(g.markdownPath, markdownSummary(run, verdict));
  return { verdict, code: verdict.verdict === 'passed' ? 0 : 1 };
}

interface ItemRow {
  item_id: string;
  status: 'passed' | 'failed' | 'error';
  score: number | null;
  reason: string | null;
  error: string | null;
  latency_ms: number;
  scores: { name: string; status: 'passed' | 'failed' | 'error'; score: number | null; reason: string | null; error: string | null }[] | null;
}

/** Streams the report to `path`: the run's items page by page, so a large run costs one page of memory. */
async function writeJUnit(g: GateRequest, run: EvalRunDto, verdict: GateVerdict, path: string): Promise<void> {
  const out = createWriteStream(path);
  const write = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  const suite = `evalgate run ${run.id}${run.name ? ` (${run.name})` : ''}`;
  const gateFailures = verdict.verdict === 'passed' ? 0 : 1;
  // a run with several criteria also has one testcase per item and criterion (classname evalgate.criteria.<name>)
  const criteria = run.criteria.map((c) => c.name);
  const tests = run.completed_count * (1 + criteria.length) + 1;
  const failures = run.failed_count + gateFailures + run.criteria.reduce((n, c) => n + c.failed_count, 0);
  const errors = run.error_count + run.criteria.reduce((n, c) => n + c.error_count, 0);
  await write('<?xml version="1.0" encoding="UTF-8"?>\n');
  await write(`<testsuites name="evalgate" tests="${tests}" failures="${failures}" errors="${errors}">\n`);
  await write(`  <testsuite name="${xml(suite)}" tests="${tests}" failures="${failures}" errors="${errors}">\n`);
  await write(`    <testcase classname="evalgate.gate" name="gate">${verdict.verdict === 'passed' ? '' : `<failure message="${xml(`gate ${verdict.verdict}`)}">${xml(verdict.reasons.join('\n'))}</failure>`}</testcase>\n`);
  let cursor: string | null = null;
  do {
    const query: string = `limit=${PAGE_LIMIT}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page: { data: ItemRow[]; next_cursor: string | null } = await call(g, 'GET', `/v1/eval-runs/${run.id}/items?${query}`);
    for (const item of page.data) {
      const time = (item.latency_ms / 1000).toFixed(3);
      const body =
        item.status === 'failed'
          ? `<failure message="${xml(`score ${item.score ?? 'none'}`)}">${xml(clip(item.reason ?? ''))}</failure>`
          : item.status === 'error'
            ? `<error message="error">${xml(clip(item.error ?? ''))}</error>`
            : '';
      await write(`    <testcase classname="evalgate.items" name="${item.item_id}" time="${time}">${body}</testcase>\n`);
      for (const name of criteria) {
        const c = item.scores?.find((x) => x.name === name);
        // no outcome for the criterion (the item's generation failed first) is the criterion's error, as the run counts it
        const cbody =
          c?.status === 'passed'
            ? ''
            : c?.status === 'failed'
              ? `<failure message="${xml(`score ${c.score ?? 'none'}`)}">${xml(clip(c.reason ?? ''))}</failure>`
              : `<error message="error">${xml(clip(c?.error ?? `no outcome: ${item.error ?? 'the item errored'}`))}</error>`;
        await write(`    <testcase classname="${xml(`evalgate.criteria.${name}`)}" name="${item.item_id}">${cbody}</testcase>\n`);
      }
    }
    cursor = page.next_cursor;
  } while (cursor);
  await write('  </testsuite>\n</testsuites>\n');
  out.end();
  await once(out, 'finish');
}

/** A Markdown summary for a pull-request comment. */
export function markdownSummary(run: EvalRunDto, v: GateVerdict): string {
  const icon = v.verdict === 'passed' ? '✅' : v.verdict === 'failed' ? '❌' : '⏳';
  const rate = v.stats.pass_rate === null ? '–' : `${(v.stats.pass_rate * 100).toFixed(1)} %`;
  const lines = [
    `### ${icon} evalgate: ${v.verdict}${run.name ? ` — ${md(run.name)}` : ''}`,
    '',
    `Run \`${run.id}\`${v.baseline_run_id ? ` against baseline \`${v.baseline_run_id}\`` : ''}: ${v.stats.passed} passed, ${v.stats.failed} failed, ${v.stats.errors} errors of ${v.stats.item_count} items (pass rate ${rate}).`,
    '',
  ];
  if (v.stats.criteria.length > 0) {
    lines.push('| criterion | passed | failed | errors | pass rate |', '|---|---|---|---|---|');
    for (const c of v.stats.criteria) {
      lines.push(`| ${md(c.name)} | ${c.passed} | ${c.failed} | ${c.errors} | ${c.pass_rate === null ? '–' : `${(c.pass_rate * 100).toFixed(1)} %`} |`);
    }
    lines.push('');
  }
  if (v.checks.length > 0) {
    lines.push('| check | status | actual | limit |', '|---|---|---|---|');
    for (const c of v.checks) lines.push(`| ${c.check}${c.criterion ? ` (${md(c.criterion)})` : ''} | ${c.status} | ${c.actual ?? '–'} | ${c.limit} |`);
    lines.push('');
  }
  for (const r of v.reasons) lines.push(`- ${md(r)}`);
  return `${lines.join('\n').trimEnd()}\n`;
}

const clip = (s: string) => (s.length > MAX_REASON_CHARS ? `${s.slice(0, MAX_REASON_CHARS)}…` : s);
const md = (s: string) => s.replace(/[|\\`*_<>[\]]/g, (c) => `\\${c}`).replace(/\r?\n/g, ' ');
/** XML text and attribute escaping; characters XML 1.0 cannot hold at all become U+FFFD. */
function xml(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/**
 * `runs:export`: streams GET /v1/eval-runs/{id}/items/export to a file (or
 * stdout) as it arrives, never holding more than a chunk; returns the bytes
 * written and, for JSON Lines, the rows (a CSV cell may hold a line break, so
 * its lines are not its records). An answer that is not
 * 200 is GateCouldNotRun with the API's { error }.
 */
export async function exportRun(
  e: { url: string; apiKey: string; runId: string; format: 'jsonl' | 'csv'; status?: string },
  outPath?: string,
): Promise<{ bytes: number; rows: number | null }> {
  const query = new URLSearchParams({ format: e.format, ...(e.status !== undefined && { status: e.status }) });
  const path = `/v1/eval-runs/${e.runId}/items/export?${query.toString()}`;
  const body = await openStream({ url: e.url, apiKey: e.apiKey }, path);
  const out = outPath === undefined ? process.stdout : createWriteStream(outPath);
  let newlines = 0;
  let bytes = 0;
  let lastByte = 10;
  for await (const chunk of body) {
    bytes += chunk.length;
    for (const b of chunk) if (b === 10) newlines++;
    lastByte = chunk.length > 0 ? chunk[chunk.length - 1]! : lastByte;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  if (outPath !== undefined) {
    (out as ReturnType<typeof createWriteStream>).end();
    await once(out, 'finish');
  }
  return { bytes, rows: e.format === 'jsonl' ? newlines + (lastByte === 10 ? 0 : 1) : null };
}
