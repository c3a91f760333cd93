/**
 * The composition root: the only place that opens connections (Postgres pool,
 * Redis) and builds the long-lived services. No hidden singletons: tests build
 * as many containers as they like, each with its own database and queue prefix.
 */
import { settlesWithin } from '../domain/shared/deadline.ts';
import type { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { createQueues, jobOptions, type Queues } from '../jobs/queues.ts';
import { createJobProducer } from '../jobs/producer.ts';
import type { JobDeps } from '../jobs/deps.ts';
import { ApiKeyResolver, JwtVerifier } from './auth.ts';
import { ensureDatabase } from './db.ts';
import type { Env } from './env.ts';
import { parseFaults, type Faults } from '../domain/shared/faults.ts';
import { WriteRateLimiter } from './rate-limit.ts';
import { configuredSecrets, createLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createRedis, logRedisErrors, queuePrefix, redisTopology, type RedisClient, type RedisTopology } from './redis.ts';
import { createBaseOrmConfig, mayHavePendingMigrations, ormOptions, prepareOrm } from './orm-config.ts';
import { EvaluatorPool } from '../domain/evaluators/evaluator-pool.ts';
import { ensureResultPartitions } from '../domain/eval-runs/result-partitions.service.ts';
import { createProviderAgent } from '../domain/evaluators/llm-judge/provider-client.ts';
import type { Agent } from 'undici';

export interface Container extends JobDeps {
  env: Env;
  log: Logger;
  orm: MikroORM;
  /** Producer connection: fails fast instead of queueing commands while Redis is away. */
  redis: RedisClient;
  /** Where Redis is and how to reach it (server/redis.ts); the workers open their own connections from it. */
  redisTopology: RedisTopology;
  /** The BullMQ prefix of a queue (on a cluster, a hash tag per queue). */
  queuePrefix(queueName: string): string;
  queues: Queues;
  jobOptions: ReturnType<typeof jobOptions>;
  apiKeys: ApiKeyResolver;
  jwt: JwtVerifier | null;
  faults: Faults;
  writeLimiter: WriteRateLimiter;
  /** This process's Prometheus registry (served at /metrics). */
  metrics: Metrics;
  /** Worker threads for evaluations too costly for the event loop (started on first use). */
  evaluatorPool: EvaluatorPool;
  /** The keep-alive connection pool for every LLM provider of this process. */
  providerAgent: Agent;
  /** MikroORM's migrator, loaded on first use: most processes never need its heap. */
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
  // first: a TLS file that cannot be read stops start-up before any connection is opened
  const topology = redisTopology(env);
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
  // the results' partitions of this month and the next ones (no default partition: a month without one refuses its results)
  try {
    const created = await ensureResultPartitions(orm.em.fork() as EntityManager);
    if (created > 0) log.info({ created }, 'created result partitions ahead');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not create the result partitions of the months ahead; the reconciler tries again');
  }

  const redis = createRedis(topology, 'producer', 'evalgate-producer');
  logRedisErrors(redis, log, 'producer');
  // Give the connection a moment so the first commands (and enqueues) do not fail for a Redis that is
  // merely still connecting; a Redis that is down does not stop start-up (runs are accepted anyway).
  await waitUntilReady(redis, 2_000);
  const prefixOf = (name: string) => queuePrefix(env.EVALGATE_QUEUE_PREFIX, name, topology.mode);
  const queues = createQueues(redis, prefixOf);
  for (const q of queues.all()) logRedisErrors(q, log, `queue ${q.name}`);

  const jwt = await JwtVerifier.create(env);
  const options = jobOptions({ chunkAttempts: env.CHUNK_ATTEMPTS });
  const evaluatorPool = new EvaluatorPool();
  const providerAgent = createProviderAgent();
  let closed = false;
  return {
    env,
    log,
    orm,
    redis,
    redisTopology: topology,
    queuePrefix: prefixOf,
    queues,
    jobOptions: options,
    producer: createJobProducer(queues, options, { attempts: env.WEBHOOK_ATTEMPTS, backoffMs: env.WEBHOOK_BACKOFF_MS }),
    apiKeys: new ApiKeyResolver(env.API_KEY_CACHE_TTL_MS),
    jwt,
    faults: parseFaults(env.EVALGATE_FAULT),
    writeLimiter: new WriteRateLimiter(
      redis,
      env.EVALGATE_QUEUE_PREFIX,
      {
        tenantPerMinute: env.RATE_LIMIT_TENANT_WRITES_PER_MINUTE,
        actorPerMinute: env.RATE_LIMIT_KEY_WRITES_PER_MINUTE,
      },
      limiterFallbackLog(log),
    ),
    metrics: createMetrics({ queues, orm, log }),
    evaluatorPool,
    providerAgent,
    migrator,
    pendingMigrations,
    async close() {
      if (closed) return;
      closed = true;
      // Closing a queue waits on its connection; with Redis away that is forever: bounded, then dropped below.
      const closedQueues = queues.close().catch((err: Error) => log.warn({ err: err.message }, 'closing queues'));
      if (!(await settlesWithin(closedQueues, 2_000))) log.warn('queues did not close (Redis unreachable?); dropping the connection');
      await orm.close(true);
      // After Postgres: a chunk still scoring past the workers' deadline cannot record the errors
      // that stopping its evaluator threads and provider requests gives its items.
      await Promise.all([
        evaluatorPool.close().catch((err: Error) => log.warn({ err: err.message }, 'closing the evaluator threads')),
        providerAgent.destroy().catch((err: Error) => log.warn({ err: err.message }, 'closing the provider connections')),
      ]);
      redis.disconnect();
    },
  };
}

async function waitUntilReady(redis: RedisClient, ms: number): Promise<void> {
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

/** The write limiter's switch to per-process limits, said out loud (at most once a minute, with how often it happened). */
function limiterFallbackLog(log: Logger): (err: Error) => void {
  let last = 0;
  let since = 0;
  return (err) => {
    since++;
    if (Date.now() - last < 60_000) return;
    // a Redis that answered with an error (CROSSSLOT, NOSCRIPT, WRONGTYPE…) is a bug or a misconfiguration, not an outage
    const answered = err.name === 'ReplyError';
    log[answered ? 'error' : 'warn']({ err: err.message, fallbacks: since }, 'write rate limits are per process: the shared limiter in Redis failed');
    last = Date.now();
    since = 0;
  };
}
