/**
 * `runs:watch`: follows a run over HTTP (the SSE endpoint, client/run-events.ts)
 * and draws its progress on stderr, so that stdout carries only the final run
 * as one JSON object. Needs no database: it is a client of a running evalgate.
 */
import type { EvalRunDto } from '../domain/eval-runs/eval-run.schema.ts';
import { followEvalRun } from '../client/run-events.ts';

const BAR_WIDTH = 24;
/** Rate over the last this-many ms: recent speed, not the average since the watch began. */
const RATE_WINDOW_MS = 10_000;
/** Without a terminal, one line per this-many ms at most (a log should not get one per poll). */
const PLAIN_LINE_MS = 1_000;

export interface WatchTarget {
  url: string;
  apiKey: string;
  runId: string;
}

export interface ProgressOutput {
  write(text: string): void;
  isTTY?: boolean;
}

/** Returns the run as it ended. */
export async function watchRunInTerminal(target: WatchTarget, out: ProgressOutput = process.stderr): Promise<EvalRunDto> {
  const meter = new RateMeter();
  let lastPlain = 0;
  let drawn = false;
  for await (const { event, run } of followEvalRun(target)) {
    const now = Date.now();
    meter.add(now, run.completed_count);
    const line = progressLine(run, meter.perSecond());
    if (out.isTTY) {
      out.write(`\r\x1b[2K${line}`);
      drawn = true;
    } else if (event === 'done' || now - lastPlain >= PLAIN_LINE_MS) {
      out.write(`${line}\n`);
      lastPlain = now;
    }
    if (event === 'done') {
      if (drawn) out.write('\n');
      if (run.status === 'failed') out.write(`run ${run.id} failed: ${run.error_message ?? 'no message'}\n`);
      return run;
    }
  }
  throw new Error('the event stream ended without the run ending');
}

/** `[#######-----] 45/100 45.0% · pass 80.0% · 12.3 items/s · ETA 5s · running` */
export function progressLine(run: EvalRunDto, perSecond: number | null): string {
  const total = run.item_count;
  const done = run.completed_count;
  const share = total > 0 ? done / total : run.status === 'completed' ? 1 : 0;
  const filled = Math.round(share * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
  const parts = [`${bar} ${done}/${total} ${(share * 100).toFixed(1)}%`];
  parts.push(`pass ${done > 0 ? ((run.passed_count / done) * 100).toFixed(1) : '–'}%`);
  if (run.error_count > 0) parts.push(`${run.error_count} errors`);
  if (perSecond !== null) parts.push(`${perSecond.toFixed(1)} items/s`);
  if (run.status === 'running' && perSecond !== null && perSecond > 0) parts.push(`ETA ${duration((total - done) / perSecond)}`);
  parts.push(run.status);
  return parts.join(' · ');
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Items per second over a sliding window of observations; null until two observations span some time. */
export class RateMeter {
  private samples: { t: number; n: number }[] = [];

  add(t: number, n: number): void {
    this.samples.push({ t, n });
    while (this.samples.length > 2 && t - (this.samples[1] as { t: number }).t >= RATE_WINDOW_MS) this.samples.shift();
  }

  perSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t < 200) return null;
    return ((last.n - first.n) * 1000) / (last.t - first.t);
  }
}
