/**
 * MikroORM's configuration without the migrator. Every process builds its ORM
 * from this; `@mikro-orm/migrations` (umzug, and the code of every migration)
 * adds to every process's heap and RSS, so it is loaded only when something
 * is to be migrated or asked about the migrations (mikro-orm.config.ts,
 * `withMigrator`). mikro-orm.config.ts' `createOrmConfig` is this plus the
 * migrator, for tools that want it from the start.
 */
import { readdir } from 'node:fs/promises';
import { defineConfig, type MikroORM } from '@mikro-orm/postgresql';
import { entities } from '../entities/index.ts';
import type { Env } from './env.ts';
import type { Logger } from './logger.ts';
import { sql, useUnnamedStatements } from '../domain/shared/sql.ts';

export interface OrmOptions {
  databaseUrl: string;
  poolMax: number;
  debug?: boolean;
  /** What databaseUrl reaches (env DATABASE_POOLER); default `none`, PostgreSQL itself. */
  pooler?: Env['DATABASE_POOLER'];
  /** Default 120 s; 0 = none. */
  statementTimeoutMs?: number;
  /** Named statements on the hot paths (sql()'s `prepare`); default: on unless pooler is `transaction`. */
  preparedStatements?: boolean;
  /** A read replica for the reads sql() is told may go there (domain/shared/sql.ts readsFromReplica). */
  replicaUrl?: string;
}

/** The ORM options of this process's pool, from its configuration. */
export function ormOptions(env: Env): OrmOptions {
  return {
    databaseUrl: env.DATABASE_URL,
    poolMax: env.DATABASE_POOL_MAX,
    pooler: env.DATABASE_POOLER,
    statementTimeoutMs: env.DATABASE_STATEMENT_TIMEOUT_MS,
    preparedStatements: env.DATABASE_PREPARED_STATEMENTS,
    replicaUrl: env.DATABASE_REPLICA_URL,
  };
}

interface RawPgConnection {
  query(text: string, cb: (err: Error | null) => void): void;
}

/**
 * How the statement timeout reaches the server, per pooler. PostgreSQL itself
 * takes it as a startup parameter (no round trip). PgBouncer refuses every
 * startup parameter it does not know ("unsupported startup parameter:
 * statement_timeout", the connection is closed), so behind it nothing extra is
 * sent at connect. In session pooling the client keeps its server connection
 * until it disconnects, so a session `SET` on each new connection is this
 * client's alone (PgBouncer's server_reset_query, DISCARD ALL, clears it after).
 * In transaction pooling a session `SET` would stay on whichever server
 * connection ran it and be inherited by other clients, while this client's next
 * statement may run on another one without it: the setting has to be where
 * every server connection starts from, the role or the database (ALTER ROLE …
 * SET statement_timeout; warnUnboundedStatements checks it at start).
 */
function connectSettings(opts: OrmOptions) {
  const timeout = opts.statementTimeoutMs ?? 120_000;
  const pooler = opts.pooler ?? 'none';
  const connection = { connectionTimeoutMillis: 3_000, ...(pooler === 'none' && timeout > 0 ? { statement_timeout: timeout } : {}) };
  const afterCreate =
    pooler === 'session'
      ? (conn: RawPgConnection, done: (err: Error | null, conn: RawPgConnection) => void) =>
          conn.query(`set statement_timeout = ${Math.trunc(timeout)}`, (err) => done(err, conn))
      : undefined;
  return { connection, afterCreate };
}

export const MIGRATIONS_TABLE = 'mikro_orm_migrations';

/** Explicit entities, no discovery; the migrations' settings are here, their list comes with the migrator. */
export function createBaseOrmConfig(opts: OrmOptions) {
  const { connection, afterCreate } = connectSettings(opts);
  return defineConfig({
    clientUrl: opts.databaseUrl,
    entities,
    discovery: { warnWhenNoEntities: true, checkDuplicateTableNames: true },
    // A dead or unreachable Postgres must fail a request within seconds (503), not hang it:
    // bounded connect and acquire times, and a statement timeout as the last guard.
    pool: { min: 0, max: opts.poolMax, createTimeoutMillis: 3_000, idleTimeoutMillis: 30_000, ...(afterCreate ? { afterCreate } : {}) },
    driverOptions: { acquireConnectionTimeout: 5_000, connection },
    migrations: {
      tableName: MIGRATIONS_TABLE,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      emit: 'ts',
      // the container logs applied migrations itself; stdout stays clean for the CLI
      silent: true,
      path: 'server/migrations',
    },
    forceUtcTimezone: true,
    // the replica gets only what sql() is told may read there; nothing of the ORM's own goes there by itself
    ...(opts.replicaUrl ? { replicas: [{ name: 'replica', clientUrl: opts.replicaUrl }], preferReadReplicas: false } : {}),
    debug: opts.debug ?? false,
    allowGlobalContext: false,
  });
}

/**
 * Whether the database may lack a migration, without loading the migrator:
 * false only when every `Migration*.ts` (or compiled `.js`) file in ./migrations is recorded
 * in the migrations table. Each migration's name is its file's name
 * (`npm run migration:create` writes them so), so false means that nothing in
 * server/migrations/index.ts is pending. When unsure (no such folder, as in a
 * bundle; no table yet; a file not recorded), true: the caller then asks the
 * migrator itself.
 */
export async function mayHavePendingMigrations(orm: MikroORM): Promise<boolean> {
  let files: string[];
  try {
    files = (await readdir(new URL('./migrations/', import.meta.url))).flatMap((f) => /^(Migration\w+)\.[jt]s$/.exec(f)?.[1] ?? []);
  } catch {
    return true;
  }
  if (files.length === 0) return true;
  let executed: Set<string>;
  try {
    const rows = await sql<{ name: string }>(orm.em.fork(), `select name from ${MIGRATIONS_TABLE}`);
    executed = new Set(rows.map((r) => r.name));
  } catch {
    return true;
  }
  return files.some((f) => !executed.has(f));
}

/**
 * For an ORM built from createBaseOrmConfig(opts): sql()'s named statements
 * turned off where they are unsafe (transaction pooling, unless asked for),
 * and the role's statement timeout checked where it is the only one.
 */
export async function prepareOrm(orm: MikroORM, opts: OrmOptions, log: Logger): Promise<void> {
  if (!(opts.preparedStatements ?? opts.pooler !== 'transaction')) useUnnamedStatements(orm.em);
  if (opts.pooler === 'transaction') await warnUnboundedStatements(orm, opts.statementTimeoutMs ?? 120_000, log);
}

/**
 * Behind transaction pooling the statement timeout is the role's or the
 * database's (connectSettings): says so at start when the server's is missing
 * or longer than DATABASE_STATEMENT_TIMEOUT_MS. One server connection answers;
 * they all start from the same role and database settings.
 */
export async function warnUnboundedStatements(orm: MikroORM, wantedMs: number, log: Logger): Promise<number | undefined> {
  let ms: number;
  try {
    const rows = await sql<{ ms: number }>(orm.em.fork(), `select setting::int as ms from pg_settings where name = 'statement_timeout'`);
    ms = Number(rows[0]?.ms);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not read statement_timeout');
    return undefined;
  }
  if (wantedMs > 0 && (ms === 0 || ms > wantedMs)) {
    log.warn(
      { statement_timeout_ms: ms, DATABASE_STATEMENT_TIMEOUT_MS: wantedMs },
      `DATABASE_POOLER=transaction: the server's statement_timeout is ${ms === 0 ? 'off' : `${ms} ms`}; a session SET cannot be used through transaction pooling, so set it on the role: ALTER ROLE <user> IN DATABASE <database> SET statement_timeout = '${wantedMs}ms'`,
    );
  }
  return ms;
}
