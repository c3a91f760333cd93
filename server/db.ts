import pg from 'pg';

/**
 * Creates the database named in `databaseUrl` when it does not exist yet, by
 * connecting to the server's `postgres` database. Concurrent starts are safe.
 */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const dbName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!dbName) throw new Error('DATABASE_URL names no database');
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [dbName]);
    if (found.rowCount) return false;
    try {
      await client.query(`create database "${dbName.replaceAll('"', '""')}"`);
      return true;
    } catch (err) {
      // 42P04 duplicate_database, 23505: another process created it at the same moment
      if ((err as { code?: string }).code === '42P04' || (err as { code?: string }).code === '23505') return false;
      throw err;
    }
  } finally {
    await client.end();
  }
}

/** Drops a database (tests only), terminating its connections first. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const dbName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(`drop database if exists "${dbName.replaceAll('"', '""')}" with (force)`);
  } finally {
    await client.end();
  }
}
