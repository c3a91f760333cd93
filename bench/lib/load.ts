/**
 * HTTP load from autocannon's CLI (`--json`), always in a process of its own
 * so the load generator never shares an event loop with what it measures.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon');

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  connections: number;
  durationS: number;
  /** stop after this many requests instead (a short warm-up) */
  amount?: number;
}

export interface LoadResult {
  /** successful (2xx) answers per second */
  rps: number;
  requests: number;
  p50: number;
  p99: number;
  p999: number;
  /** connection errors + timeouts + non-2xx answers */
  errors: number;
  statusCodes: Record<string, number>;
  durationS: number;
}

/** Runs autocannon for `durationS` and parses its JSON result. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const args = [AUTOCANNON, '--json', '-c', String(spec.connections), '-m', spec.method, '-t', '10'];
  args.push(...(spec.amount ? ['-a', String(spec.amount)] : ['-d', String(spec.durationS)]));
  for (const [k, v] of Object.entries(spec.headers)) args.push('-H', `${k}=${v}`);
  if (spec.body !== undefined) args.push('-b', spec.body);
  args.push(spec.url);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = out.trim().split('\n').filter(Boolean).pop();
  if (code !== 0 || !line) throw new Error(`autocannon exited ${code}: ${err.slice(-2000)}`);
  const j = JSON.parse(line) as {
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    '2xx': number;
    latency: { p50: number; p99: number; p99_9: number };
    requests: { total: number };
    statusCodeStats: Record<string, { count: number }>;
  };
  const statusCodes = Object.fromEntries(Object.entries(j.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]));
  return {
    rps: j['2xx'] / j.duration,
    requests: j.requests.total,
    p50: j.latency.p50,
    p99: j.latency.p99,
    p999: j.latency.p99_9,
    errors: j.errors + j.timeouts + j.non2xx,
    statusCodes,
    durationS: j.duration,
  };
}
