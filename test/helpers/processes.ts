/**
 * Real processes for tests: evalgate itself (`tsx server/main.ts …`) and
 * disposable redis-server and PostgreSQL instances, for tests that kill,
 * flush or restart a service without touching the machine's shared one.
 *
 * Ports: a port found free and closed again can be taken by another process
 * before the child listens on it (EADDRINUSE at start). So an evalgate API
 * listens on port 0 and reports the port it got (startEvalgateApi), and the
 * disposable servers, which must come back on the same port after a restart,
 * take a port outside the kernel's ephemeral range (freePort) and start again
 * on another one if it was taken all the same.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { dropDatabase } from '../../server/db.ts';
import { deleteKeys, waitFor } from './stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Timings that make a stalled chunk, a lost job or a shutdown show within
 * seconds instead of the production 30 s (README: Configuration), for tests
 * that run real worker processes through such faults.
 */
export const FAST_RECOVERY_ENV: Readonly<Record<string, string>> = {
  CHUNK_SIZE: '25',
  WORKER_CONCURRENCY: '2',
  LOCK_DURATION_MS: '2000',
  STALLED_INTERVAL_MS: '1000',
  RECONCILE_INTERVAL_MS: '1000',
  SHUTDOWN_TIMEOUT_MS: '10000',
};

/** The lowest port the kernel hands out on its own (to outgoing connections and to listeners on port 0). */
const EPHEMERAL_LOW = ((): number => {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
})();

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * A port free on 127.0.0.1 right now, chosen at random below the kernel's
 * ephemeral range: no outgoing connection and no listener on port 0 (of any
 * process on the machine) can be given it before our server listens on it,
 * or while that server is down for a restart. Another process choosing ports
 * the same way still can: a server that fails with EADDRINUSE starts again on
 * another port (see `onPort`).
 */
export async function freePort(): Promise<number> {
  const low = Math.max(1_024, EPHEMERAL_LOW - 16_384);
  if (EPHEMERAL_LOW - low >= 1_000) {
    for (let i = 0; i < 50; i++) {
      const port = low + Math.floor(Math.random() * (EPHEMERAL_LOW - low));
      if (await canListen(port)) return port;
    }
  }
  return kernelPort();
}

/** A server could not listen: another process holds its port. */
class PortTaken extends Error {}

const ADDRESS_IN_USE = /address already in use|EADDRINUSE/i;

/**
 * `attempt(port)` on the port `nextPort()` gives, again (up to `tries` times,
 * `pauseMs` apart) while it fails with PortTaken: a new port for a first
 * start, the same one for a restart (whose clients know only that port).
 */
async function onPort<T>(nextPort: () => Promise<number>, attempt: (port: number) => Promise<T>, tries = 5, pauseMs = 0): Promise<T> {
  for (let i = 1; ; i++) {
    const port = await nextPort();
    try {
      return await attempt(port);
    } catch (err) {
      if (!(err instanceof PortTaken) || i >= tries) throw err;
      await sleep(pauseMs);
    }
  }
}

/** Everything a child prints on stdout and stderr, keeping the last `cap` characters or more. */
function captureOutput(child: ChildProcess, cap: number): () => string {
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 2 * cap) out = out.slice(-cap);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => out;
}

const EXITED = Symbol('exited');

/** Polls `probe` until it gives a truthy value; fails at once, with the child's output, if the child exits first. */
async function untilStarted<T>(
  child: ChildProcess,
  output: () => string,
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 50,
): Promise<T> {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const v = await waitFor(async () => (exited() ? EXITED : probe()), { timeoutMs, intervalMs, what }).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${output().slice(-2_000)}`);
  });
  if (v === EXITED) {
    throw new Error(`${what} exited during start (${JSON.stringify({ code: child.exitCode, signal: child.signalCode })}): ${output().slice(-2_000)}`);
  }
  return v;
}

/** A process's resident (VmRSS) or peak resident (VmHWM) memory in MB, from /proc/<pid>/status. */
export function procMemoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

export interface EvalgateProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** `env` on top of a clean environment (PATH and HOME only): what every child process of the tests gets. */
function childEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env };
}

/** Runs `node <args>` in the repository with `env` on top of a clean environment, to its exit. */
export function runNode(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand(process.execPath, args, env);
}

/** Runs `command <args>` in `cwd` (default: the repository) with `env` on top of a clean environment, to its exit. */
export function runCommand(command: string, args: string[], env: Record<string, string>, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: childEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The end of a test file that ran evalgate processes on `env`: kills them, then removes their queue keys and database. */
export async function killAndCleanUp(procs: readonly EvalgateProcess[], env: Record<string, string>): Promise<void> {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  const r = new Redis(env.REDIS_URL as string);
  await deleteKeys(r, `${env.EVALGATE_QUEUE_PREFIX}:*`);
  r.disconnect();
  await dropDatabase(env.DATABASE_URL as string);
}

/**
 * Starts `server/main.ts <mode>` with `env` on top of a clean environment; with `compiledMain`
 * (a built `dist/server/main.js`), that compiled file with plain node instead.
 */
export function spawnEvalgate(mode: 'all' | 'api' | 'worker', env: Record<string, string>, compiledMain?: string): EvalgateProcess {
  // node --import tsx: one process, so signals reach evalgate itself (the tsx CLI would put a parent in between).
  const args = compiledMain ? [compiledMain, mode] : ['--import', 'tsx', 'server/main.ts', mode];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child, 1_000_000);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
}

/** The start helpers below read info log lines: a higher LOG_LEVEL would hide them. */
function requireInfoLogs(env: Record<string, string>, why: string): void {
  const level = env.LOG_LEVEL ?? 'info';
  if (!['info', 'debug', 'trace'].includes(level)) throw new Error(`${why} in an info log line: LOG_LEVEL=${level} hides it`);
}

export interface EvalgateApi {
  proc: EvalgateProcess;
  port: number;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
}

/** Fastify's line once the server listens, with the address it got. */
const LISTENING = /"msg":"Server listening at (http:\/\/[^"]+)"/;

/**
 * `server/main.ts api` (or `all`) on a port of its own: PORT=0 (whatever `env`
 * says), and the port is read from the "Server listening at" line it logs once
 * it listens, so no other process can take the port in between. Resolves once
 * /healthz answers; `onSpawn` sees the process first (to keep it for cleanup
 * and logs). A process that fails to start is killed.
 */
export async function startEvalgateApi(
  env: Record<string, string>,
  opts: { mode?: 'api' | 'all'; timeoutMs?: number; onSpawn?: (proc: EvalgateProcess) => void; compiledMain?: string } = {},
): Promise<EvalgateApi> {
  const mode = opts.mode ?? 'api';
  requireInfoLogs(env, `evalgate ${mode} reports its port`);
  const proc = spawnEvalgate(mode, { HOST: '127.0.0.1', ...env, PORT: '0' }, opts.compiledMain);
  opts.onSpawn?.(proc);
  const what = `evalgate ${mode}`;
  try {
    const baseUrl = await untilStarted(proc.child, proc.output, what, async () => LISTENING.exec(proc.output())?.[1], opts.timeoutMs);
    const healthz = async () => (await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(5_000) })).ok;
    await untilStarted(proc.child, proc.output, `${what} at ${baseUrl}/healthz`, healthz, opts.timeoutMs, 100);
    return { proc, port: Number(new URL(baseUrl).port), baseUrl };
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

/** `server/main.ts worker`; resolves once it logs that its workers have started. */
export async function startEvalgateWorker(
  env: Record<string, string>,
  opts: { timeoutMs?: number; onSpawn?: (proc: EvalgateProcess) => void } = {},
): Promise<EvalgateProcess> {
  requireInfoLogs(env, 'evalgate worker reports its start');
  const proc = spawnEvalgate('worker', env);
  opts.onSpawn?.(proc);
  try {
    await untilStarted(proc.child, proc.output, 'evalgate worker', async () => proc.output().includes('"msg":"workers started"'), opts.timeoutMs);
    return proc;
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
}

export interface DisposableRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Starts it again, empty, on the same port. */
  start(): Promise<void>;
  client(): Redis;
}

/** A redis-server of our own, keeping nothing on disk, as BullMQ wants it (noeviction). */
export async function startDisposableRedis(): Promise<DisposableRedis> {
  let proc: ChildProcess | null = null;
  const launch = async (port: number): Promise<number> => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc = child;
    const output = captureOutput(child, 20_000);
    // Bounded, so that a listener of another process that never answers cannot hold the probe.
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      enableReadyCheck: false,
      connectTimeout: 1_000,
      commandTimeout: 1_000,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    try {
      // Answered by this redis-server, not by another one that holds the port.
      await untilStarted(
        child,
        output,
        `redis-server on ${port}`,
        async () => {
          if (probe.status !== 'ready') {
            try {
              await probe.connect();
            } catch {
              probe.disconnect();
              return false;
            }
          }
          return Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]) === child.pid;
        },
        10_000,
      );
      return port;
    } catch (err) {
      child.kill('SIGKILL');
      if (ADDRESS_IN_USE.test(output())) throw new PortTaken(`redis-server: port ${port} is taken`, { cause: err });
      throw err;
    } finally {
      probe.disconnect();
    }
  };
  const port = await onPort(freePort, launch);
  const clients: Redis[] = [];
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      await onPort(async () => port, launch, 20, 500);
    },
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
      for (const c of clients.splice(0)) c.disconnect();
    },
    client() {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
  };
}

export interface DisposablePostgres {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>` (append `/<database>`). */
  baseUrl: string;
  databaseUrl(name: string): string;
  /** `immediate` is a crash (no checkpoint, every client cut off); `fast` a clean shutdown. */
  stop(mode?: 'immediate' | 'fast'): Promise<void>;
  start(): Promise<void>;
  /** Stops the server if it runs (immediate) and deletes its data directory. */
  destroy(): Promise<void>;
}

/** Debian's newest /usr/lib/postgresql/<version>/bin, or null. */
const DEBIAN_PG_BIN = ((): string | null => {
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? `/usr/lib/postgresql/${newest}/bin` : null;
})();

/** Where initdb and pg_ctl live: PG_BIN_DIR, else /usr/local/bin, else Debian's /usr/lib/postgresql/<newest>/bin. */
const PG_BIN_DIR = process.env.PG_BIN_DIR ?? (existsSync('/usr/local/bin/initdb') ? '/usr/local/bin' : (DEBIAN_PG_BIN ?? '/usr/local/bin'));

/** A PostgreSQL tool from PG_BIN_DIR, else from Debian's bin directory (where pg_basebackup and psql are). */
function pgTool(name: string): string {
  if (existsSync(join(PG_BIN_DIR, name))) return join(PG_BIN_DIR, name);
  return DEBIAN_PG_BIN ? join(DEBIAN_PG_BIN, name) : name;
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${[file, ...args].join(' ')} failed: ${(stderr || stdout || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

/** initdb and pg_ctl refuse root: as root, they run as the `postgres` OS user. */
function runAsPostgres(file: string, args: string[]): Promise<string> {
  return process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args);
}

/** Data directories of disposable servers still running: stopped and deleted if the test process exits first. */
const livePostgres = new Map<string, () => void>();
let exitHook = false;
function stopOnExit(dir: string, stopSync: () => void): void {
  livePostgres.set(dir, stopSync);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const stop of livePostgres.values()) stop();
  });
}

/**
 * Serves the data directory `data` (in `dir`, owned by postgres) on a free
 * port with `settings`, until stop() or destroy(); stopped and deleted if the
 * test process exits first. pg_ctl only ever sees this server's data directory.
 */
async function serveDataDir(dir: string, data: string, settings: string, what: string): Promise<DisposablePostgres> {
  const log = join(dir, 'server.log');
  const pgCtl = (...args: string[]) => runAsPostgres(join(PG_BIN_DIR, 'pg_ctl'), ['-D', data, ...args]);
  let running = false;
  const launch = async (port: number): Promise<number> => {
    const logged = existsSync(log) ? statSync(log).size : 0;
    const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 ${settings}`;
    try {
      await pgCtl('-o', opts, '-l', log, '-w', '-t', '60', 'start');
    } catch (err) {
      // The server says why it stopped in its log, not on pg_ctl's output.
      const said = existsSync(log) ? readFileSync(log).subarray(logged).toString() : '';
      if (ADDRESS_IN_USE.test(said)) throw new PortTaken(`${what}: port ${port} is taken`, { cause: err });
      throw err;
    }
    running = true;
    return port;
  };
  const start = async () => void (await onPort(async () => port, launch, 20, 500));
  const stop = async (mode: 'immediate' | 'fast' = 'fast') => {
    if (!running) return;
    await pgCtl('-m', mode, '-w', '-t', '60', 'stop');
    running = false;
  };
  const port = await onPort(freePort, launch);
  // pg_ctl daemonizes the server: a test process that dies before destroy() must not leave it behind.
  stopOnExit(dir, () => {
    const ctl = [join(PG_BIN_DIR, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'];
    try {
      if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', ...ctl], { stdio: 'ignore' });
      else execFileSync(ctl[0] as string, ctl.slice(1), { stdio: 'ignore' });
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const baseUrl = `postgres://postgres@127.0.0.1:${port}`;
  return {
    port,
    baseUrl,
    databaseUrl: (name) => `${baseUrl}/${name}`,
    start,
    stop,
    async destroy() {
      await stop('immediate').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      livePostgres.delete(dir);
    },
  };
}

/** A temporary directory the `postgres` OS user owns (initdb and pg_ctl run as it under root). */
async function postgresDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', dir]);
  return dir;
}

/**
 * A PostgreSQL server of our own (initdb into a temporary directory, a free
 * port, trust auth, fsync off), for tests that crash or restart the database
 * without touching the machine's shared one.
 */
export async function startDisposablePostgres(): Promise<DisposablePostgres> {
  const dir = await postgresDir('evalgate-pg-');
  const data = join(dir, 'data');
  await runAsPostgres(join(PG_BIN_DIR, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-N', '-E', 'UTF8', '--no-locale']);
  return serveDataDir(dir, data, '-c fsync=off -c synchronous_commit=off -c full_page_writes=off', 'postgres');
}

/**
 * A streaming replica (hot standby) of a disposable primary: pg_basebackup -R
 * from it into a temporary directory, started on a free port. `pauseReplay` /
 * `resumeReplay` hold back and release what it shows, so a test can tell
 * which server a read went to.
 */
export async function startDisposableReplica(primary: DisposablePostgres): Promise<DisposablePostgres & { pauseReplay(): Promise<void>; resumeReplay(): Promise<void> }> {
  const dir = await postgresDir('evalgate-pg-replica-');
  const data = join(dir, 'data');
  await runAsPostgres(pgTool('pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', data, '-R', '-X', 'stream', '-c', 'fast']);
  const server = await serveDataDir(dir, data, '-c hot_standby=on -c fsync=off', 'postgres replica');
  const psql = (q: string) => run(pgTool('psql'), ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres', '-d', 'postgres', '-Atc', q]);
  return {
    ...server,
    pauseReplay: async () => void (await psql('select pg_wal_replay_pause()')),
    resumeReplay: async () => void (await psql('select pg_wal_replay_resume()')),
  };
}

/** SIGKILLs every process still running and waits until all are gone (test teardown). */
export async function killAll(procs: readonly EvalgateProcess[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}
