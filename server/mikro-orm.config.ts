import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { migrationsList } from './migrations/index.ts';
import { createBaseOrmConfig, type OrmOptions } from './orm-config.ts';

export type { OrmOptions } from './orm-config.ts';

/**
 * The one MikroORM configuration: explicit entities, explicit migrations list, no discovery.
 * For tools (scripts/migration-create.ts). The server's processes start from
 * orm-config.ts without the migrator and load this module only when they need
 * the migrator (`withMigrator`): importing it adds to a process's heap and RSS.
 */
export function createOrmConfig(opts: OrmOptions) {
  const base = createBaseOrmConfig(opts);
  return { ...base, extensions: [Migrator], migrations: { ...base.migrations, migrationsList } };
}

/** Gives an ORM built from createBaseOrmConfig the migrator and the explicit migrations list. */
export function withMigrator(orm: MikroORM): Migrator {
  if (!orm.config.get('migrations').migrationsList) {
    orm.config.set('migrations', { ...orm.config.get('migrations'), migrationsList });
    Migrator.register(orm);
  }
  return orm.getMigrator() as Migrator;
}

/**
 * Applies the pending migrations, through `migrationUrl` when it is another
 * database URL than the ORM's (DATABASE_MIGRATION_URL: PostgreSQL itself, past
 * a pooler) on a connection of its own, else through the ORM. Either works
 * behind PgBouncer in transaction mode: the migrations run in one transaction
 * (allOrNothing) and take no advisory lock; their `set names` is a parameter
 * PgBouncer tracks per client.
 */
export async function applyMigrations(orm: MikroORM, migrationUrl: string | undefined): Promise<{ name: string }[]> {
  if (!migrationUrl || migrationUrl === orm.config.get('clientUrl')) return withMigrator(orm).up();
  const direct = await MikroORM.init(createOrmConfig({ databaseUrl: migrationUrl, poolMax: 1 }));
  try {
    return await (direct.getMigrator() as Migrator).up();
  } finally {
    await direct.close(true);
  }
}
