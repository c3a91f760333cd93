import { defineConfig } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { entities } from '../entities/index.ts';
import { migrationsList } from './migrations/index.ts';

export interface OrmOptions {
  databaseUrl: string;
  poolMax: number;
  debug?: boolean;
}

/** The one MikroORM configuration: explicit entities, explicit migrations list, no discovery. */
export function createOrmConfig(opts: OrmOptions) {
  return defineConfig({
    clientUrl: opts.databaseUrl,
    entities,
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: true, checkDuplicateTableNames: true },
    // A dead or unreachable Postgres must fail a request within seconds (503), not hang it:
    // bounded connect and acquire times, and a statement timeout as the last guard.
    pool: { min: 0, max: opts.poolMax, createTimeoutMillis: 3_000, idleTimeoutMillis: 30_000 },
    driverOptions: { acquireConnectionTimeout: 5_000, connection: { connectionTimeoutMillis: 3_000, statement_timeout: 120_000 } },
    migrations: {
      migrationsList,
      tableName: 'mikro_orm_migrations',
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
