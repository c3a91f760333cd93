/**
 * MikroORM's configuration without the migrator. Every process builds its ORM
 * from this; `@mikro-orm/migrations` (umzug, and the code of every migration)
 * costs ≈ 5 MB of V8 heap (5–10 MB of RSS) per process, so it is loaded only when something is
 * to be migrated or asked about the migrations (mikro-orm.config.ts,
 * `withMigrator`). mikro-orm.config.ts' `createOrmConfig` is this plus the
 * migrator, for tools that want it from the start.
 */
import { readdir } from 'node:fs/promises';
import { defineConfig, type MikroORM } from '@mikro-orm/postgresql';
import { entities } from '../entities/index.ts';

export interface OrmOptions {
  databaseUrl: string;
  poolMax: number;
  debug?: boolean;
}

export const MIGRATIONS_TABLE = 'mikro_orm_migrations';

/** Explicit entities, no discovery; the migrations' settings are here, their list comes with the migrator. */
export function createBaseOrmConfig(opts: OrmOptions) {
  return defineConfig({
    clientUrl: opts.databaseUrl,
    entities,
    discovery: { warnWhenNoEntities: true, checkDuplicateTableNames: true },
    // A dead or unreachable Postgres must fail a request within seconds (503), not hang it:
    // bounded connect and acquire times, and a statement timeout as the last guard.
    pool: { min: 0, max: opts.poolMax, createTimeoutMillis: 3_000, idleTimeoutMillis: 30_000 },
    driverOptions: { acquireConnectionTimeout: 5_000, connection: { connectionTimeoutMillis: 3_000, statement_timeout: 120_000 } },
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
    const rows = (await orm.em.fork().getConnection().execute(`select name from ${MIGRATIONS_TABLE}`)) as { name: string }[];
    executed = new Set(rows.map((r) => r.name));
  } catch {
    return true;
  }
  return files.some((f) => !executed.has(f));
}
