/**
 * The composition root: the only place that opens connections (Postgres pool,
 * Redis) and builds the long-lived services. No hidden singletons: tests build
 * as many containers as they like, each with its own database and queue prefix.
 */
import { settlesWithin } from './deadline.ts';
import type { Migrator } from '@mikro-orm/migrations';
import { MikroORM } from '@mikro-orm/postgresql';
import { Redis } from 'ioredis';
import { createQueues, jobOptions, type Queues } from '../jobs/queues.ts';
import { ApiKeyResolver, JwtVerifier } from './auth.ts';
import { ensureDatabase } from './db.ts';
import type { Env } from './env.ts';
import { parseFaults, type Faults } from './faults.ts';
import { WriteRateLimiter } from './rate-limit.ts';
import { configuredSecrets, createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createBaseOrmConfig, mayHavePendingMigrations, ormOptions, prepareOrm } from './orm-config.ts';

export interface Container {
  env: Env;
  log: Logger;
  orm: MikroORM;
  /** Producer connection: fails fast instead of queueing commands while Redis is away. */
  redis: Redis;
  queues: Queues;
  jobOptions: ReturnType<typeof jobOptions>;
  apiKeys: ApiKeyResolver;
  jwt: JwtVerifier | null;
  faults: Faults;
  writeLimiter: WriteRateLimiter;
  /** This process's Prometheus registry (served at /metrics). */
  metrics: Metrics;
  /** MikroORM's migrator, loaded on first use (≈ 5 MB of heap that most processes never need). */
  migrator(): Promise<Migrator>;
  /** How many migrations the database lacks; loads the migrator only when it cannot tell without it. */
  pendingMigrations(): Promise<number>;
  close(): Promise<void>;
}

export interface ContainerOptions {
  log?: Logger;
  /** Create the database if missing and apply pending migrations (default true). */
  migrate?: boolean;
}

export async function createContainer(env: Env, opts: ContainerOptions = {}): Promise<Container> {
  const log = opts.log ?? createLogger(env.LOG_LEVEL, undefined, configuredSecrets(env));
  if (opts.migrate ?? true) {
    if (await ensureDatabase(env.DATABASE_MIGRATION_URL ?? env.DATABASE_URL)) log.info('created database');
  }
  const orm = await MikroORM.init(createBaseOrmConfig(ormOptions(env)));
  await prepareOrm(orm, ormOptions(env), log);
  const migrator = async () => (await import('./mikro-orm.config.ts')).withMigrator(orm);
  const pendingMigrations = async () => ((await mayHavePendingMigrations(orm)) ? (await (await migrator()).getPendingMigrations()).length : 0);
  if ((opts.migrate ?? true) && (await mayHavePendingMigrations(orm))) {
    const applied = await (await import('./mikro-orm.config.ts')).applyMigrations(orm, env.DATABASE_MIGRATION_URL);
    if (applied.length) log.info({ migrations: applied.map((m) => m.name) }, 'applied migrations');
  }

  const redis = createProducerRedis(env.REDIS_URL);
  let lastRedisError = '';
  redis.on('error', (err: Error) => {
    // ioredis reconnects by itself; log each distinct failure once, not every retry.
    if (err.message !== lastRedisError) log.warn({ err: err.message }, 'redis (producer) connection error');
    lastRedisError = err.message;
  });
  redis.on('ready', () => {
    lastRedisError = '';
  });
  // Give the connection a moment so the first commands (and enqueues) do not fail for a Redis that is
  // merely still connecting; a Redis that is down does not stop start-up (runs are accepted anyway).
  await waitUntilReady(redis, 2_000);
  const queues = createQueues(redis, env.EVALGATE_QUEUE_PREFIX);
  for (const q of queues.all()) q.on('error', (err) => log.warn({ err: err.message, queue: q.name }, 'queue error'));

  const jwt = await JwtVerifier.create(env);
  let closed = false;
  return {
    env,
    log,
    orm,
    redis,
    queues,
    jobOptions: jobOptions({ chunkAttempts: env.CHUNK_ATTEMPTS }),
    apiKeys: new ApiKeyResolver(env.API_KEY_CACHE_TTL_MS),
    jwt,
    faults: parseFaults(env.EVALGATE_FAULT),
    writeLimiter: new WriteRateLimiter(redis, env.EVALGATE_QUEUE_PREFIX, {
      tenantPerMinute: env.RATE_LIMIT_TENANT_WRITES_PER_MINUTE,
      actorPerMinute: env.RATE_LIMIT_KEY_WRITES_PER_MINUTE,
    }),
    metrics: createMetrics({ queues, orm, log }),
    migrator,
    pendingMigrations,
    async close() {
      if (closed) return;
      closed = true;
      // Closing a queue waits on its connection; with Redis away that is forever: bounded, then dropped below.
      const closedQueues = queues.close().catch((err: Error) => log.warn({ err: err.message }, 'closing queues'));
      if (!(await settlesWithin(closedQueues, 2_000))) log.warn('queues did not close (Redis unreachable?); dropping the connection');
      await orm.close(true);
      redis.disconnect();
    },
  };
}

async function waitUntilReady(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
  });
}

/** Producers fail fast: one try per command and no offline queue, so a request never waits on a dead Redis. */
export function createProducerRedis(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2_000,
    lazyConnect: false,
  });
}

/** Worker connections retry forever (BullMQ requires maxRetriesPerRequest: null for blocking commands). */
export function workerRedisOptions(url: string) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    // BullMQ's default backs off to one reconnect attempt every 20 s (e^n ms), so after a ~20 s
    // Redis outage the workers resumed up to 20 s after Redis was back. Capped at 2 s instead
    // (ioredis' own default cap): a handful of connects per second per process while Redis is down.
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
  };
}
