/**
 * Child processes of the bench (evalgate itself, the baselines, the load
 * generator) and what /proc says about them: peak RSS (VmHWM) and CPU time.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Everything the process printed (stdout and stderr), capped. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<Proc>();

export interface SpawnOptions {
  env: Record<string, string>;
  /** Extra node flags (e.g. --cpu-prof); NODE_OPTIONS refuses some of them. */
  nodeArgs?: string[];
  ipc?: boolean;
}

/** `node [nodeArgs] --import tsx <script> [...args]` in the repository root, on a clean environment plus `env`. */
export function spawnTs(name: string, script: string, args: string[], opts: SpawnOptions): Proc {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env },
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    exited,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const r = await exited;
        clearTimeout(timer);
        live.delete(proc);
        return r;
      }
      live.delete(proc);
      return exited;
    },
  };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return proc;
}

/** Every child still running (for cleanup on failure or Ctrl-C). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(5_000)));
}

/** Kills every child at once, synchronously (process 'exit' handlers cannot wait). */
export function killAllNow(): void {
  for (const p of live) p.child.kill('SIGKILL');
}

function status(pid: number): string {
  return readFileSync(`/proc/${pid}/status`, 'utf8');
}

/** Resident set size now (VmRSS) in MB; NaN once the process is gone. */
export function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(status(pid))?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Peak resident set size (VmHWM) in MB; NaN once the process is gone. */
export function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(status(pid));
    return Number(m?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** User + system CPU time of a process in ms (0 when it is gone). */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command (which may hold spaces) start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / ticksPerSecond();
  } catch {
    return 0;
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls until `fn` is truthy; throws with `what` (and a process's output) after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 60_000, intervalMs = 50, proc?: Proc): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (proc && proc.child.exitCode !== null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode}) while waiting for ${what}:\n${proc.output().slice(-3000)}`);
    }
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}${proc ? `\n${proc.output().slice(-3000)}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** Waits until `GET url` answers 2xx. */
export async function waitHttp(url: string, proc: Proc, timeoutMs = 60_000): Promise<void> {
  await until(async () => (await fetch(url)).ok, `${proc.name} at ${url}`, timeoutMs, 50, proc);
}
