/**
 * Real processes for tests: evalgate itself (`tsx server/main.ts …`) and
 * disposable redis-server instances on free ports, for tests that kill,
 * flush or restart a service without touching the machine's shared one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
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
