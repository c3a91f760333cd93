/**
 * What each DATABASE_POOLER puts into the connection: the parts of the PgBouncer
 * support that need no PgBouncer (the topology suite runs the real one).
 */
import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from '../../server/env.ts';
import { createBaseOrmConfig, ormOptions } from '../../server/orm-config.ts';

function connectionOf(env: Record<string, string>) {
  const config = createBaseOrmConfig(ormOptions(loadEnv(env)));
  return { connection: (config.driverOptions as { connection: Record<string, unknown> }).connection, afterCreate: (config.pool as { afterCreate?: unknown }).afterCreate };
}

describe('DATABASE_POOLER', () => {
  it('directly: the statement timeout goes at connect, nothing runs after it (the hot path as before)', () => {
    expect(connectionOf({})).toEqual({ connection: { connectionTimeoutMillis: 3_000, statement_timeout: 120_000 }, afterCreate: undefined });
    expect(connectionOf({ DATABASE_STATEMENT_TIMEOUT_MS: '0' }).connection).not.toHaveProperty('statement_timeout');
  });

  it('behind PgBouncer: no startup parameter it would refuse; a session SET only in session pooling', () => {
    const session = connectionOf({ DATABASE_POOLER: 'session' });
    expect(session.connection).toEqual({ connectionTimeoutMillis: 3_000 });
    expect(typeof session.afterCreate).toBe('function');
    expect(connectionOf({ DATABASE_POOLER: 'transaction' })).toEqual({ connection: { connectionTimeoutMillis: 3_000 }, afterCreate: undefined });
  });

  it('DATABASE_PREPARED_STATEMENTS reaches the ORM options; unset, prepareOrm decides by the pooler', () => {
    expect(ormOptions(loadEnv({})).preparedStatements).toBeUndefined();
    expect(ormOptions(loadEnv({ DATABASE_PREPARED_STATEMENTS: 'false' })).preparedStatements).toBe(false);
    expect(ormOptions(loadEnv({ DATABASE_POOLER: 'transaction', DATABASE_PREPARED_STATEMENTS: 'true' })).preparedStatements).toBe(true);
  });

  it('refuses a pool mode evalgate cannot run under, naming the variable', () => {
    // statement pooling forbids multi-statement transactions, which every chunk uses
    expect(() => loadEnv({ DATABASE_POOLER: 'statement' })).toThrow(EnvError);
    expect(() => loadEnv({ DATABASE_POOLER: 'statement' })).toThrow(/DATABASE_POOLER/);
  });

  it('DATABASE_REPLICA_URL becomes the one replica, and nothing of the ORM prefers it by itself', () => {
    const config = createBaseOrmConfig(ormOptions(loadEnv({ DATABASE_REPLICA_URL: 'postgres://postgres@127.0.0.1:5433/evalgate' })));
    expect(config.replicas).toEqual([{ name: 'replica', clientUrl: 'postgres://postgres@127.0.0.1:5433/evalgate' }]);
    expect(config.preferReadReplicas).toBe(false);
    expect(createBaseOrmConfig(ormOptions(loadEnv({}))).replicas).toBeUndefined();
    expect(() => loadEnv({ DATABASE_REPLICA_URL: 'mysql://x' })).toThrow(EnvError);
  });
});
