/**
 * Generates the next migration: applies the committed ones to a scratch
 * database, diffs it against the entities, writes server/migrations/<name>.ts.
 * Rename it to say what it does, and append it to server/migrations/index.ts.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { dropDatabase, ensureDatabase } from '../server/db.ts';
import { loadEnv } from '../server/env.ts';
import { createOrmConfig } from '../server/mikro-orm.config.ts';

const env = loadEnv();
const url = new URL(env.DATABASE_URL);
url.pathname = `/evalgate_migration_${process.pid}`;
await ensureDatabase(url.toString());
const orm = await MikroORM.init(createOrmConfig({ databaseUrl: url.toString(), poolMax: 2 }));
try {
  await orm.getMigrator().up();
  const result = await orm.getMigrator().createMigration('server/migrations');
  process.stdout.write(result.fileName ? `wrote server/migrations/${result.fileName}\n` : 'no schema changes\n');
} finally {
  await orm.close(true);
  await dropDatabase(url.toString());
}
