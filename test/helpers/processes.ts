/**
 * Real processes for tests: evalgate itself (`tsx server/main.ts …`) and
 * disposable redis-server instances on free ports, for tests that kill,
 * flush or restart a service without touching the machine's shared one.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { waitFor } from './stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export interface EvalgateProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `server/main.ts <mode>` with `env` on top of a clean environment. */
export function spawnEvalgate(mode: 'all' | 'api' | 'worker', env: Record<string, string>): EvalgateProcess {
  // node --import tsx: one process, so signals reach evalgate itself (the tsx CLI would put a parent in between).
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', mode], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
}

export interface DisposableRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  client(): Redis;
}

/** A redis-server of our own, keeping nothing on disk, as BullMQ wants it (noeviction). */
export async function startDisposableRedis(): Promise<DisposableRedis> {
  const port = await freePort();
  let proc: ChildProcess | null = null;
  const start = async () => {
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], {
      stdio: 'ignore',
    });
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    await waitFor(
      async () => {
        try {
          await probe.connect();
        } catch {
          probe.disconnect();
          return false;
        }
        return (await probe.ping()) === 'PONG';
      },
      { timeoutMs: 10_000, intervalMs: 50, what: `redis-server on ${port}` },
    );
    probe.disconnect();
  };
  await start();
  const clients: Redis[] = [];
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
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

/** Where initdb and pg_ctl live: PG_BIN_DIR, else /usr/local/bin, else Debian's /usr/lib/postgresql/<newest>/bin. */
const PG_BIN_DIR = ((): string => {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  if (existsSync('/usr/local/bin/initdb')) return '/usr/local/bin';
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return newest ? `/usr/lib/postgresql/${newest}/bin` : '/usr/local/bin';
})();

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
 * A PostgreSQL server of our own (initdb into a temporary directory, a free
 * port, trust auth, fsync off), for tests that crash or restart the database
 * without touching the machine's shared one. pg_ctl only ever sees this
 * server's data directory.
 */
export async function startDisposablePostgres(): Promise<DisposablePostgres> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'evalgate-pg-'));
  if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', dir]);
  const data = join(dir, 'data');
  await runAsPostgres(join(PG_BIN_DIR, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-N', '-E', 'UTF8', '--no-locale']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const pgCtl = (...args: string[]) => runAsPostgres(join(PG_BIN_DIR, 'pg_ctl'), ['-D', data, ...args]);
  let running = false;
  const start = async () => {
    await pgCtl('-o', opts, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start');
    running = true;
  };
  const stop = async (mode: 'immediate' | 'fast' = 'fast') => {
    if (!running) return;
    await pgCtl('-m', mode, '-w', '-t', '60', 'stop');
    running = false;
  };
  await start();
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
