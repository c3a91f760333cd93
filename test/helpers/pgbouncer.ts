/**
 * A real PgBouncer (the `pgbouncer` binary, Debian's package) of our own for a
 * topology test: its config written into a temporary directory, listening on a
 * free port, pointed at the machine's PostgreSQL. Nothing of the machine's own
 * PgBouncer (if any) is used or touched.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './processes.ts';
import { waitFor } from './stack.ts';

export const PGBOUNCER_BIN = process.env.PGBOUNCER_BIN ?? 'pgbouncer';

/** The binary's version line, or an error that says how to install it (the test fails with it: no silent skip). */
export function pgbouncerVersion(): string {
  try {
    return execFileSync(PGBOUNCER_BIN, ['--version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0] ?? '';
  } catch (err) {
    throw new Error(`pgbouncer is not installed (${(err as Error).message}): apt-get install -y pgbouncer (.ci/run does), or set PGBOUNCER_BIN`);
  }
}

export interface BouncerDatabase {
  /** The name clients connect to. */
  alias: string;
  /** The PostgreSQL database it stands for. */
  dbname: string;
  poolMode?: 'session' | 'transaction';
}

export interface Bouncer {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<alias>` */
  url(alias: string): string;
  /** One statement on the admin console (`SHOW POOLS`, …): simple protocol only, as the console wants. */
  admin<T = Record<string, unknown>>(command: string): Promise<T[]>;
  output(): string;
  stop(): Promise<void>;
}

export interface BouncerOptions {
  databases: BouncerDatabase[];
  /** Server connections per database and user: fewer than the clients, so that clients share them. */
  poolSize: number;
  /** Where PgBouncer forwards to (default the machine's PostgreSQL). */
  pgHost?: string;
  pgPort?: number;
}

/**
 * Starts PgBouncer in the foreground (its own child: stop() ends exactly it).
 * `pool_mode = transaction` unless a database says otherwise, `auth_type =
 * trust`, no Unix socket (nothing written outside the temporary directory).
 * PgBouncer refuses to run as root: as root it is told to switch to `postgres`.
 */
export async function startPgbouncer(opts: BouncerOptions): Promise<Bouncer> {
  pgbouncerVersion();
  const dir = await mkdtemp(join(tmpdir(), 'evalgate-pgbouncer-'));
  const root = process.getuid?.() === 0;
  if (root) execFileSync('chown', ['postgres:postgres', dir]);
  await chmod(dir, 0o755);
  const port = await freePort();
  const host = opts.pgHost ?? '127.0.0.1';
  const pgPort = opts.pgPort ?? 5432;
  const ini = join(dir, 'pgbouncer.ini');
  const databases = opts.databases.map(
    (d) => `${d.alias} = host=${host} port=${pgPort} dbname=${d.dbname}${d.poolMode ? ` pool_mode=${d.poolMode}` : ''}`,
  );
  await writeFile(join(dir, 'userlist.txt'), '"postgres" ""\n');
  await writeFile(
    ini,
    [
      '[databases]',
      ...databases,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'admin_users = postgres',
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      'max_client_conn = 2000',
      // Long enough for a loaded CI machine; a client waiting for a server connection past it is an error the test sees.
      'query_wait_timeout = 120',
      'server_check_delay = 1',
      'log_connections = 0',
      'log_disconnections = 0',
      `pidfile = ${join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(PGBOUNCER_BIN, root ? ['-u', 'postgres', ini] : [ini], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = (alias: string) => `postgres://postgres@127.0.0.1:${port}/${alias}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}): ${out}`);
        const c = new pg.Client({ connectionString: url('pgbouncer'), connectionTimeoutMillis: 2_000 });
        try {
          await c.connect();
          await c.query('SHOW VERSION');
          return true;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `pgbouncer on port ${port}` },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${out}`, { cause: err });
  }
  return {
    port,
    url,
    async admin<T>(command: string): Promise<T[]> {
      const c = new pg.Client({ connectionString: url('pgbouncer'), connectionTimeoutMillis: 5_000 });
      await c.connect();
      try {
        return (await c.query(command)).rows as T[];
      } finally {
        await c.end();
      }
    },
    output: () => out,
    stop,
  };
}
